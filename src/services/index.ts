/**
 * The live state of the deployed services, as the Docker engine sees them now: what `status` shows
 * and doctor judges. The state store only knows what the last upgrade left; a container stopped
 * since then is seen here.
 */
import type { Config } from '../config/index.js';
import { type ContainerFacts, inspectProject } from '../runtime/index.js';

export type ServiceState =
  | 'healthy'
  | 'unhealthy'
  | 'starting'
  | 'running'
  | 'restarting'
  | 'exited'
  | 'created'
  | 'paused'
  | 'dead';

export interface LiveService {
  service: string;
  container: string;
  state: ServiceState;
  /** Whether its failure counts (SPEC 2 `[health] critical`, default all). */
  critical: boolean;
  /** Down or unhealthy: the application does not work as deployed. A one-shot that exited 0 is not. */
  down: boolean;
  exit_code: number | null;
  /** One line for a person: `exited (code 137)`, `unhealthy (HEALTHCHECK)`. */
  detail: string;
}

export type ServicesView =
  | { seen: true; project: string; services: LiveService[] }
  | { seen: false; project: string | null; reason: string };

/** Restart policies under which an exit 0 is the end of the job (the runtime's health rules agree). */
const ONE_SHOT_POLICIES = new Set(['', 'no', 'on-failure']);

function stateOf(container: ContainerFacts): ServiceState {
  const { State: state } = container;
  if (state.Restarting) return 'restarting';
  if (state.Status === 'paused') return 'paused';
  if (state.Status === 'created') return 'created';
  if (state.Status === 'dead') return 'dead';
  if (!state.Running) return 'exited';
  const health = state.Health?.Status;
  if (health === 'healthy' || health === 'unhealthy' || health === 'starting') return health;
  return 'running';
}

/** One container as a service line; `critical` is the configured list, undefined meaning all. */
export function describeContainer(container: ContainerFacts, critical: string[] | undefined): LiveService {
  const service = container.Config.Labels?.['com.docker.compose.service'] ?? container.Id.slice(0, 12);
  const state = stateOf(container);
  const exited = state === 'exited' || state === 'dead';
  const policy = container.HostConfig.RestartPolicy?.Name ?? '';
  const completed = exited && container.State.ExitCode === 0 && ONE_SHOT_POLICIES.has(policy);
  const oom = container.State.OOMKilled ? ', out of memory' : '';
  let detail: string = state;
  if (exited) detail = `${state} (code ${container.State.ExitCode}${oom}${completed ? ', a finished one-shot' : ''})`;
  else if (state === 'unhealthy') detail = 'unhealthy (its HEALTHCHECK fails)';
  else if (state === 'restarting') detail = `restarting (last exit code ${container.State.ExitCode})`;
  return {
    service,
    container: container.Id.slice(0, 12),
    state,
    critical: critical === undefined || critical.includes(service),
    down: !completed && state !== 'healthy' && state !== 'running' && state !== 'starting',
    exit_code: exited ? container.State.ExitCode : null,
    detail,
  };
}

/**
 * The project's containers, one line per service (sorted by name). Docker not installed or not
 * answering is a view that says why, not an error: `status` still shows what the store knows.
 */
export async function liveServices(
  config: Config,
  projectName: () => Promise<string>,
  signal?: AbortSignal,
): Promise<ServicesView> {
  let project: string | null = null;
  try {
    project = await projectName();
    const containers = await inspectProject(project, signal);
    const services = containers
      .map((container) => describeContainer(container, config.health.critical))
      .sort((a, b) => a.service.localeCompare(b.service));
    return { seen: true, project, services };
  } catch (error) {
    return { seen: false, project, reason: (error as Error).message.split('\n')[0] ?? 'unknown' };
  }
}
