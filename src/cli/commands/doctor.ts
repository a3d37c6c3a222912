import type { Command } from 'commander';
import { runDoctor } from '../../doctor/index.js';
import { DockerRuntime, detectCompose, dockerAvailable, runCommand } from '../../runtime/index.js';
import { CLIENT_VERSION } from '../client-version.js';
import { action } from '../context.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check that this box is ready for unattended upgrades: READY, READY_WITH_WARNINGS or NOT_READY')
    .action(
      action(async (context) => {
        const runtime = new DockerRuntime({ dockerDir: context.paths.dockerDir, composeFile: context.paths.composeFile, ...(context.config.docker.project_name ? { projectName: context.config.docker.project_name } : {}), logger: context.logger });
        const { verdict, checks } = await runDoctor({
          config: context.config,
          paths: context.paths,
          store: context.store,
          clientVersion: CLIENT_VERSION,
          runtime: {
            dockerAvailable,
            composeDescription: async () => {
              const compose = await detectCompose();
              return `${compose.command} ${compose.args.join(' ')} (${compose.version})`.replace('  ', ' ');
            },
            validate: (file) => runtime.validate(file),
            ownContainersPorts: async () => {
              const project = await runtime.projectName();
              const output = await runCommand('docker', ['ps', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{.Ports}}'], { timeoutMs: 15_000 });
              return [...output.stdout.matchAll(/:(\d+)->/g)].map((match) => match[1]!);
            },
          },
        });
        const icon = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;
        context.print([...checks.map((check) => `${icon[check.status]}  ${check.name.padEnd(14)} ${check.detail}`), '', verdict], { verdict, checks });
        return verdict === 'NOT_READY' ? 1 : 0;
      }),
    );
}
