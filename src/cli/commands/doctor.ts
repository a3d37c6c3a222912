import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { type DoctorCheck, type DoctorReport, doctorDocker, exitCodeOf, runDoctor } from '../../doctor/index.js';
import { writeFileAtomic } from '../../fsutil/index.js';
import { createDispatcher } from '../../manifest/index.js';
import { DockerRuntime } from '../../runtime/index.js';
import { openStore, type Store } from '../../state/index.js';
import { CLIENT_VERSION } from '../client-version.js';
import { action, type CliContext } from '../context.js';

const TAGS = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;

/** One line per check: status, title, message, and for a problem what to do. */
export function renderCheck(check: DoctorCheck): string {
  return `${TAGS[check.status]}  ${check.title.padEnd(13)} ${check.message}${check.hint ? ` → ${check.hint}` : ''}`;
}

/**
 * The state store, or an in-memory one when the home cannot hold it: doctor must still answer on a
 * box whose home is not writable (its `home` check says so).
 */
function storeFor(context: CliContext): { store: Store; temporary: boolean } {
  try {
    return { store: context.store, temporary: false };
  } catch (error) {
    context.logger.warn({ err: error }, 'doctor: cannot open the state store; using a temporary one');
    return { store: openStore(':memory:'), temporary: true };
  }
}

/** `--output FILE`: the report with when and where it was taken, written atomically (a support ticket's attachment). */
async function exportReport(file: string, report: DoctorReport): Promise<void> {
  const exported = { host: os.hostname(), generated_at: new Date().toISOString(), client: CLIENT_VERSION, ...report };
  await writeFileAtomic(path.resolve(file), `${JSON.stringify(exported, null, 2)}\n`);
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check that this box is ready for unattended upgrades: READY, READY_WITH_WARNINGS or NOT_READY')
    .option('--output <file>', 'also write the report, as JSON, to this file')
    .action(
      action(async (context, options: { output?: string }) => {
        const { config, paths, logger } = context;
        const runtime = new DockerRuntime({
          dockerDir: paths.dockerDir,
          composeFile: paths.composeFile,
          projectName: config.docker.project_name || undefined,
          logger,
        });
        const dispatcher = createDispatcher(config);
        const { store, temporary } = storeFor(context);
        try {
          const report = await runDoctor({
            config,
            paths,
            store,
            clientVersion: CLIENT_VERSION,
            docker: doctorDocker(runtime, config),
            logger,
            dispatcher,
          });
          context.print([...report.checks.map(renderCheck), '', report.verdict], report);
          if (options.output) await exportReport(options.output, report);
          return exitCodeOf(report.verdict);
        } finally {
          if (temporary) store.close();
        }
      }),
    );
}
