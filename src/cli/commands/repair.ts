import type { Command } from 'commander';
import { type DoctorReport, doctorDocker, runDoctor } from '../../doctor/index.js';
import { ErrorCodes, NuwaxError } from '../../errors/index.js';
import { createDispatcher } from '../../manifest/index.js';
import {
  REPAIR_KINDS,
  REPAIR_ORDER,
  type RepairKind,
  type RepairRun,
  repairDocker,
  runRepair,
} from '../../repair/index.js';
import { DockerRuntime } from '../../runtime/index.js';
import { scratchCopyOf } from '../../state/index.js';
import { CLIENT_VERSION } from '../client-version.js';
import { action, type CliContext, safeUser } from '../context.js';
import { withLock } from '../locked.js';
import { confirmInTerminal } from './confirm.js';

interface RepairOptions {
  dryRun?: boolean;
  yes?: boolean;
}

export type RepairStatus = 'repaired' | 'nothing_to_do' | 'planned' | 'failed';

export interface RepairResult {
  status: RepairStatus;
  dry_run: boolean;
  repairs: RepairRun[];
  verdict: DoctorReport['verdict'];
  doctor: DoctorReport;
  /** The `history` row; none for a dry run, which records nothing. */
  history_id?: number;
}

export function runtimeFor(context: CliContext): DockerRuntime {
  const { config, paths, logger } = context;
  return new DockerRuntime({
    dockerDir: paths.dockerDir,
    composeFile: paths.composeFile,
    projectName: config.docker.project_name,
    logger,
    commandTimeoutMs: config.upgrade.phase_timeout * 1000,
    stopTimeoutSeconds: config.docker.stop_timeout,
  });
}

function kindsOf(argument: string | undefined): RepairKind[] {
  if (argument === undefined || argument === 'all') return REPAIR_ORDER;
  if ((REPAIR_KINDS as readonly string[]).includes(argument)) return [argument as RepairKind];
  throw new NuwaxError(
    ErrorCodes.E_USAGE,
    `unknown repair "${argument}": use one of ${[...REPAIR_KINDS, 'all'].join(', ')}`,
  );
}

function statusOf(runs: RepairRun[], dryRun: boolean): RepairStatus {
  const actions = runs.flatMap((run) => run.actions);
  if (actions.some((item) => item.status === 'failed')) return 'failed';
  if (actions.length === 0) return 'nothing_to_do';
  return dryRun ? 'planned' : 'repaired';
}

/** The doctor's verdict after the repair, wired as `nuwax doctor` wires it. */
async function doctorAfter(context: CliContext, runtime: DockerRuntime, dryRun: boolean): Promise<DoctorReport> {
  // doctor caches the manifest in the store as it reads it: a dry run gives it a copy.
  const store = dryRun ? scratchCopyOf(context.store) : context.store;
  try {
    return await runDoctor({
      config: context.config,
      paths: context.paths,
      store,
      clientVersion: CLIENT_VERSION,
      docker: doctorDocker(runtime, context.config),
      logger: context.logger,
      dispatcher: createDispatcher(context.config),
    });
  } finally {
    if (dryRun) store.close();
  }
}

/** Runs the repairs in order, each on the facts the one before left; the whole of `nuwax repair`. */
export async function repair(context: CliContext, kinds: RepairKind[], dryRun: boolean): Promise<RepairResult> {
  const runtime = runtimeFor(context);
  const docker = repairDocker(runtime, context.config);
  const repairs: RepairRun[] = [];
  for (const kind of kinds) {
    repairs.push(
      await runRepair(kind, {
        docker,
        paths: context.paths,
        critical: context.config.health.critical,
        protectedPaths: context.config.upgrade.protected,
        dryRun,
        logger: context.logger,
      }),
    );
  }
  const doctor = await doctorAfter(context, runtime, dryRun);
  return { status: statusOf(repairs, dryRun), dry_run: dryRun, repairs, verdict: doctor.verdict, doctor };
}

/** A repair is recorded in `history` once it has run (trigger `repair`); a dry run records nothing. */
export function recordRepair(
  context: CliContext,
  kinds: RepairKind[],
  result: RepairResult,
  startedBy: string,
): number {
  const { store } = context;
  const version = store.installedVersion(context.config.versions.docker_service);
  const id = store.upgrades.begin({
    fromVersion: version,
    toVersion: version,
    strategy: null,
    trigger: 'repair',
    startedBy,
    reason: `repair ${kinds.join(', ')}`,
  });
  const { doctor: _doctor, ...recorded } = result;
  store.upgrades.finish(id, result.status === 'failed' ? 'failed' : 'success', recorded);
  return id;
}

function render(result: RepairResult): string[] {
  const lines: string[] = [];
  for (const run of result.repairs) {
    lines.push(`repair ${run.kind}`);
    for (const finding of run.findings) lines.push(`  found: ${finding}`);
    if (run.actions.length === 0) lines.push('  nothing to do');
    for (const item of run.actions) {
      const verb = { planned: 'would', done: 'did', failed: 'FAILED', skipped: 'skipped' }[item.status];
      lines.push(`  ${verb}: ${item.description}${item.error ? ` (${item.error.code}: ${item.error.message})` : ''}`);
    }
  }
  lines.push(`doctor: ${result.verdict}${result.dry_run ? ' (nothing was changed: dry run)' : ''}`);
  for (const check of result.doctor.checks.filter((item) => item.status !== 'ok'))
    lines.push(`  ${check.status}: ${check.title}: ${check.message}${check.hint ? ` → ${check.hint}` : ''}`);
  return lines;
}

export function registerRepair(program: Command): void {
  program
    .command('repair')
    .description('bounded, safe repairs of a sick box; never touches the content of docker/data/')
    .argument('[what]', `${[...REPAIR_KINDS, 'all'].join(' | ')} (default: all)`)
    .option('--dry-run', 'say what would be done, change nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      action(async (context, what: string | undefined, options: RepairOptions) => {
        const kinds = kindsOf(what);
        const dryRun = options.dryRun === true;
        if (!dryRun && !options.yes && !(await confirmInTerminal(`Repair ${kinds.join(', ')}? [y/N] `))) {
          context.print(['cancelled: nothing was changed'], { status: 'cancelled', changed: false });
          return 1;
        }
        const result = dryRun
          ? await repair(context, kinds, true)
          : await withLock(context, 'nuwax repair', async () => {
              const done = await repair(context, kinds, false);
              done.history_id = recordRepair(context, kinds, done, safeUser());
              return done;
            });
        context.print(render(result), result);
        return result.status === 'failed' ? 1 : 0;
      }),
    );
}
