import type { Config } from '../config/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { type DockerRuntime, inspectProject, runCommand } from '../runtime/index.js';
import { portsInDockerPs } from '../doctor/index.js';
import type { ContainerView, RepairDocker } from './gather.js';

const DOCKER_TIMEOUT_MS = 30_000;

async function docker(args: string[]): Promise<string> {
  const output = await runCommand('docker', args, { timeoutMs: DOCKER_TIMEOUT_MS });
  if (output.code !== 0)
    throw new NuwaxError(
      ErrorCodes.E_DOCKER,
      `docker ${args[0]} ${args[1] ?? ''} failed: ${output.stderr.trim().slice(-300)}`,
      {
        details: { args, stderr: output.stderr },
      },
    );
  return output.stdout;
}

interface Networked {
  NetworkSettings?: { Networks?: Record<string, { NetworkID?: string }> | null };
}

/** Production wiring of a repair's Docker side over the deployment's runtime. */
export function repairDocker(runtime: DockerRuntime, config: Config): RepairDocker {
  const label = async () => `label=com.docker.compose.project=${await runtime.projectName()}`;
  return {
    projectName: () => runtime.projectName(),
    services: () => runtime.services(),
    containers: async () =>
      (await inspectProject(await runtime.projectName())).map((container): ContainerView => {
        const networks = (container as typeof container & Networked).NetworkSettings?.Networks ?? {};
        return {
          service: container.Config.Labels?.['com.docker.compose.service'] ?? '',
          id: container.Id,
          state: container.State.Status,
          running: container.State.Running && !container.State.Restarting,
          health: container.State.Health?.Status ?? null,
          networks: Object.fromEntries(Object.entries(networks).map(([name, item]) => [name, item.NetworkID ?? ''])),
        };
      }),
    networks: async () =>
      (await docker(['network', 'ls', '--filter', await label(), '--format', '{{.ID}} {{.Name}}']))
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [id, name] = line.split(' ');
          return { id: id!, name: name! };
        }),
    networkIds: async () => new Set((await docker(['network', 'ls', '-q', '--no-trunc'])).split('\n').filter(Boolean)),
    composeConfig: () => runtime.normalisedConfig(),
    ownPorts: async () => portsInDockerPs(await docker(['ps', '--filter', await label(), '--format', '{{.Ports}}'])),
    stop: async (signal) => {
      await runtime.down({ signal });
    },
    start: async (signal) => {
      await runtime.up({ signal });
    },
    removeNetwork: async (name) => {
      await docker(['network', 'rm', name]);
    },
    waitHealth: async (signal) => {
      const report = await runtime.health({
        critical: config.health.critical,
        settleMs: config.health.settle * 1000,
        timeoutMs: config.health.timeout * 1000,
        http: config.health.http,
        signal,
      });
      return report.criticalFailures;
    },
  };
}
