import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, NuwaxError, throwIfAborted } from '../errors/index.js';
import { noOutput, runCommand } from './exec.js';
import { type ContainerFacts, judge, portInUse, type Verdict } from './judge.js';

/**
 * The services are down until this check sees them healthy: a 1 s poll on top of Docker's own
 * healthcheck interval lost up to a second of downtime; an observation costs ~0.1 s of docker CLI.
 */
export const HEALTH_POLL_MS = 250;

export interface HealthOptions {
  /** Services whose failure fails the check; default all (SPEC 2 `[health] critical`). */
  critical?: string[];
  settleMs: number;
  timeoutMs: number;
  /** Between observations; default HEALTH_POLL_MS. */
  pollMs?: number;
  http?: Array<{ url: string; status: number }>;
  signal?: AbortSignal;
}

export interface ServiceHealth {
  service: string;
  container: string | null;
  state: string;
  health: string | null;
  healthy: boolean;
  critical: boolean;
  exitCode: number | null;
  oomKilled: boolean;
  restartCount: number;
  reason: string;
  logs: string[];
  portInUse?: string;
}

export interface ProbeResult {
  url: string;
  ok: boolean;
  status: number | null;
  error?: string;
}

export interface HealthReport {
  healthy: boolean;
  services: ServiceHealth[];
  healthyServices: string[];
  unhealthyServices: string[];
  criticalFailures: string[];
  probes: ProbeResult[];
}

const LOG_LINES = 20;

/** The containers of a compose project, one-off `run` containers left out. */
export async function inspectProject(project: string, signal?: AbortSignal): Promise<ContainerFacts[]> {
  return (await inspectIds(await listProject(project, signal), signal)) ?? [];
}

async function listProject(project: string, signal?: AbortSignal): Promise<string[]> {
  const filters = ['--filter', `label=com.docker.compose.project=${project}`];
  const listed = await runCommand('docker', ['ps', '-aq', ...filters], { timeoutMs: 30_000, signal });
  if (listed.code !== 0)
    throw new NuwaxError(ErrorCodes.E_DOCKER, `docker ps failed: ${listed.stderr.trim().slice(-500)}`);
  return listed.stdout.split('\n').filter(Boolean);
}

/** null when one of the containers is gone (inspect then fails for all): the caller lists them again. */
async function inspectIds(ids: string[], signal?: AbortSignal): Promise<ContainerFacts[] | null> {
  if (ids.length === 0) return [];
  const output = await runCommand('docker', ['inspect', ...ids], { timeoutMs: 30_000, signal });
  if (output.code !== 0) return null;
  return (JSON.parse(output.stdout) as ContainerFacts[]).filter(
    (item) => item.Config.Labels?.['com.docker.compose.oneoff'] !== 'True',
  );
}

export async function lastLogLines(container: string, lines = LOG_LINES): Promise<string[]> {
  const output = await runCommand('docker', ['logs', '--tail', String(lines), container], {
    timeoutMs: 30_000,
  }).catch(noOutput);
  // Both streams, as the service wrote them; order between them is lost, which is fine for a diagnosis.
  return `${output?.stdout ?? ''}${output?.stderr ?? ''}`.split('\n').filter(Boolean).slice(-lines);
}

async function probe(url: string, status: number, signal?: AbortSignal): Promise<ProbeResult> {
  const timeout = AbortSignal.timeout(5000);
  try {
    const response = await fetch(url, {
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      redirect: 'manual',
    });
    await response.arrayBuffer();
    const result: ProbeResult = { url, ok: response.status === status, status: response.status };
    if (!result.ok) result.error = `answered ${response.status}, expected ${status}`;
    return result;
  } catch (error) {
    throwIfAborted(signal);
    return { url, ok: false, status: null, error: (error as Error).message };
  }
}

interface Observation {
  container: ContainerFacts | null;
  verdict: Verdict;
}

const serviceOf = (container: ContainerFacts) => container.Config.Labels?.['com.docker.compose.service'];

/**
 * The project's containers across polls: listed once (`docker ps`), then one `docker inspect` of the
 * known ids per poll, a docker CLI start less while the services are down; listed again when one of
 * them is gone or a service has none.
 */
class ProjectContainers {
  private ids: string[] | null = null;

  constructor(
    private readonly project: string,
    private readonly signal?: AbortSignal,
  ) {}

  async read(): Promise<ContainerFacts[]> {
    if (this.ids !== null) {
      const known = await inspectIds(this.ids, this.signal);
      if (known !== null) return known;
    }
    this.ids = await listProject(this.project, this.signal);
    return (await inspectIds(this.ids, this.signal)) ?? [];
  }

  forget(): void {
    this.ids = null;
  }
}

/** When a running container without a HEALTHCHECK will have run for the settle time (epoch ms), or null. */
function settlesAt(container: ContainerFacts | null, settleMs: number): number | null {
  const state = container?.State;
  if (!state?.Running || state.Restarting || state.Health) return null;
  return Date.parse(state.StartedAt) + settleMs;
}

/**
 * The services' list and where it comes from: compose, or remembered from before the switch (compose
 * v1 takes about a second of CPU to list them, time the services are down). `fresh` asks compose
 * again, once, if the containers disagree with a remembered list.
 */
export interface ServiceList {
  services: string[] | Promise<string[]>;
  fresh?: () => Promise<string[]>;
}

/**
 * Polls the project's containers and the HTTP probes until every service is decided and every probe
 * answers, a critical service has failed, or the timeout passes (SPEC 8). Then reports each service
 * with the facts a diagnosis needs: exit code, OOMKilled, restarts, last log lines, a port in use.
 */
export async function checkHealth(project: string, list: ServiceList, options: HealthOptions): Promise<HealthReport> {
  const deadline = Date.now() + options.timeoutMs;
  let serviceList = Promise.resolve(list.services);
  let fresh = list.fresh;
  // Its failure surfaces at the first observation; this only keeps an abort before it from leaving
  // the rejection unhandled.
  serviceList.catch(() => undefined);
  const containersOf = new ProjectContainers(project, options.signal);
  let critical = new Set(options.critical);
  let observations = new Map<string, Observation>();
  let probes: ProbeResult[] = [];
  let stoppedBy = '';
  for (;;) {
    throwIfAborted(options.signal);
    const [services, containers] = await Promise.all([serviceList, containersOf.read()]);
    const labelled = new Set(containers.map(serviceOf));
    const missing = services.some((service) => !labelled.has(service));
    if (missing) containersOf.forget();
    if (fresh && (missing || [...labelled].some((service) => service && !services.includes(service)))) {
      serviceList = fresh();
      fresh = undefined;
      continue;
    }
    const now = Date.now();
    observations = new Map(
      services.map((service) => {
        const container = containers.find((item) => serviceOf(item) === service) ?? null;
        const verdict: Verdict = container
          ? judge(container, options.settleMs, now)
          : { decided: false, reason: 'no container' };
        return [service, { container, verdict }];
      }),
    );
    if (!options.critical) critical = new Set(observations.keys());
    probes = await Promise.all((options.http ?? []).map((item) => probe(item.url, item.status, options.signal)));
    const verdicts = [...observations.entries()];
    const allDecided = verdicts.every(([, { verdict }]) => verdict.decided);
    const criticalFailed = verdicts.some(
      ([service, { verdict }]) => critical.has(service) && verdict.decided && !verdict.healthy,
    );
    if (allDecided && probes.every((item) => item.ok)) break;
    if (criticalFailed || Date.now() >= deadline) {
      stoppedBy = criticalFailed
        ? 'stopped early: a critical service failed'
        : `timed out after ${Math.round(options.timeoutMs / 1000)} s`;
      break;
    }
    // A settle time ends at a known moment: look then rather than up to a poll later.
    const settles = verdicts
      .filter(([, { verdict }]) => !verdict.decided)
      .map(([, { container }]) => settlesAt(container, options.settleMs))
      .filter((at): at is number => at !== null && at > now);
    const wait = Math.min(options.pollMs ?? HEALTH_POLL_MS, deadline - now, Math.min(...settles) - now + 5);
    await sleep(Math.max(20, wait), undefined, { signal: options.signal }).catch(() => throwIfAborted(options.signal));
  }
  const report: HealthReport = {
    healthy: true,
    services: [],
    healthyServices: [],
    unhealthyServices: [],
    criticalFailures: [],
    probes,
  };
  for (const [service, observation] of observations) {
    const entry = await describe(service, observation, critical.has(service), stoppedBy);
    report.services.push(entry);
    (entry.healthy ? report.healthyServices : report.unhealthyServices).push(service);
    if (!entry.healthy && entry.critical) report.criticalFailures.push(service);
  }
  // A probe is a statement about the application as a whole: a failed one is always critical.
  for (const failed of probes.filter((item) => !item.ok)) report.criticalFailures.push(`probe ${failed.url}`);
  report.healthy = report.criticalFailures.length === 0;
  return report;
}

async function describe(
  service: string,
  { container, verdict }: Observation,
  critical: boolean,
  stoppedBy: string,
): Promise<ServiceHealth> {
  const healthy = verdict.decided && verdict.healthy;
  const logs = healthy || !container ? [] : await lastLogLines(container.Id);
  const port = portInUse(logs, container);
  const state = container?.State;
  const health: ServiceHealth = {
    service,
    container: container?.Id.slice(0, 12) ?? null,
    state: state?.Status ?? 'missing',
    health: state?.Health?.Status ?? null,
    healthy,
    critical,
    exitCode: state && (!state.Running || state.Restarting) ? state.ExitCode : null,
    oomKilled: state?.OOMKilled ?? false,
    restartCount: container?.RestartCount ?? 0,
    reason: verdict.decided ? verdict.reason : `not healthy, check ${stoppedBy}: ${verdict.reason}`,
    logs,
  };
  if (port) health.portInUse = port;
  return health;
}
