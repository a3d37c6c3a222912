import {
  type ComposeCommand,
  composeVersion,
  detectCompose,
  type DockerRuntime,
  runCommand,
} from '../runtime/index.js';
import type { Config } from '../config/index.js';
import { liveServices } from '../services/index.js';
import { portsInDockerPs } from './compose-ports.js';
import type { DoctorDocker } from './gather.js';
import type { ComposeFact, DockerFact } from './types.js';

const DOCKER_TIMEOUT_MS = 15_000;

/** The last non-empty line of a command's complaint, where docker says what is wrong. */
function lastLine(text: string): string {
  return (
    text
      .trim()
      .split('\n')
      .map((item) => item.trim())
      .filter(Boolean)
      .at(-1) ?? ''
  );
}

async function engine(): Promise<DockerFact> {
  try {
    const output = await runCommand('docker', ['info', '--format', '{{.ServerVersion}}'], {
      timeoutMs: DOCKER_TIMEOUT_MS,
    });
    const version = output.stdout.trim();
    if (output.code === 0 && version !== '') return { reachable: true, version };
    return { reachable: false, reason: lastLine(output.stderr) || `docker info exited with code ${output.code}` };
  } catch (error) {
    return { reachable: false, reason: (error as Error).message };
  }
}

async function composeFact(detect: () => Promise<ComposeCommand>): Promise<ComposeFact> {
  try {
    const found = await detect();
    return {
      found: true,
      command: [found.command, ...found.args].join(' '),
      kind: found.version,
      version: composeVersion() ?? 'version unknown',
    };
  } catch (error) {
    return { found: false, reason: (error as Error).message };
  }
}

/** Production wiring of doctor's Docker side over the deployment's runtime. */
export function doctorDocker(runtime: DockerRuntime, config: Config): DoctorDocker {
  // One detection for the compose check and the compose file check, which run side by side: compose
  // v1 is a Python program that takes most of a second a call on an edge box.
  let detection: Promise<ComposeCommand> | undefined;
  const detect = () => {
    detection ??= detectCompose();
    return detection;
  };
  return {
    engine,
    compose: () => composeFact(detect),
    composeConfig: async (file) => {
      await detect();
      return runtime.normalisedConfig(file);
    },
    ownPorts: async () => {
      const project = await runtime.projectName();
      const output = await runCommand(
        'docker',
        ['ps', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{.Ports}}'],
        { timeoutMs: DOCKER_TIMEOUT_MS },
      );
      if (output.code !== 0) throw new Error(`docker ps exited with code ${output.code}: ${lastLine(output.stderr)}`);
      return portsInDockerPs(output.stdout);
    },
    services: () => liveServices(config, () => runtime.projectName()),
  };
}
