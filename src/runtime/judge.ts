/** The part of `docker inspect` the health rules read. */
export interface ContainerFacts {
  Id: string;
  Config: {
    Labels: Record<string, string> | null;
    Cmd?: string[] | null;
    Env?: string[] | null;
    Healthcheck?: { Test?: string[] | null } | null;
  };
  HostConfig: {
    RestartPolicy?: { Name?: string };
    Memory?: number;
    PortBindings?: Record<string, Array<{ HostPort?: string }> | null> | null;
  };
  RestartCount: number;
  State: {
    Status: string;
    Running: boolean;
    Restarting: boolean;
    OOMKilled: boolean;
    ExitCode: number;
    StartedAt: string;
    Health?: {
      Status: string;
      FailingStreak?: number;
      Log?: Array<{ ExitCode: number; Output: string; Start?: string; End?: string }> | null;
    } | null;
  };
}

export type Verdict = { decided: true; healthy: boolean; reason: string } | { decided: false; reason: string };

/**
 * Restarts after which a service counts as crash-looping. Docker's restart back-off starts at 100 ms
 * and doubles, so a crash loop gets there in about a second, while a service that fell over once at
 * start (its database was not ready yet) and then stays up is still judged on its current run.
 */
export const CRASH_LOOP_RESTARTS = 3;

/** Restart policies under which an exit 0 is the end of the job, not a crash (a one-shot service). */
const ONE_SHOT_POLICIES = new Set(['', 'no', 'on-failure']);

function describeExit(container: ContainerFacts): string {
  const restarts = container.RestartCount > 0 ? `, restarted ${container.RestartCount} times` : '';
  // Docker learns of an OOM kill from an event that can arrive after the exit, leaving OOMKilled
  // false; a SIGKILL under a memory limit is then still most likely the limit.
  const memory = container.HostConfig.Memory ?? 0;
  const killed =
    container.State.ExitCode === 137 && memory > 0
      ? ` (SIGKILL under a ${Math.round(memory / 1048576)} MiB memory limit: likely out of memory)`
      : '';
  return `exited with code ${container.State.ExitCode}${killed}${restarts}`;
}

/**
 * SPEC 8 for one container, a pure function of its inspect output and the clock: healthy when its
 * HEALTHCHECK says so; with none, when its current run has lasted `settleMs`; a one-shot that exited
 * 0 passes. Undecided while a HEALTHCHECK is starting or the settle time runs.
 */
export function judge(container: ContainerFacts, settleMs: number, now: number): Verdict {
  const { State: state, RestartCount: restarts } = container;
  if (state.OOMKilled)
    return {
      decided: true,
      healthy: false,
      reason: `killed for lack of memory (OOMKilled, exit code ${state.ExitCode})`,
    };
  if (!state.Running && !state.Restarting && (state.Status === 'exited' || state.Status === 'dead')) {
    const policy = container.HostConfig.RestartPolicy?.Name ?? '';
    if (state.ExitCode === 0 && ONE_SHOT_POLICIES.has(policy))
      return { decided: true, healthy: true, reason: 'one-shot, exited 0' };
    return { decided: true, healthy: false, reason: describeExit(container) };
  }
  const health = state.Health?.Status;
  if (health === 'healthy') return { decided: true, healthy: true, reason: 'HEALTHCHECK healthy' };
  if (health === 'unhealthy') return { decided: true, healthy: false, reason: 'HEALTHCHECK unhealthy' };
  if (restarts >= CRASH_LOOP_RESTARTS)
    return { decided: true, healthy: false, reason: `crash-looping: ${describeExit(container)}` };
  if (state.Restarting) return { decided: false, reason: `restarting after exit code ${state.ExitCode}` };
  if (health) return { decided: false, reason: `HEALTHCHECK ${health}` };
  if (state.Running) {
    const up = now - Date.parse(state.StartedAt);
    if (up >= settleMs)
      return {
        decided: true,
        healthy: true,
        reason: `running for ${Math.round(up / 100) / 10} s without a HEALTHCHECK`,
      };
    return { decided: false, reason: 'settling' };
  }
  return { decided: false, reason: state.Status };
}

const IN_USE = /address already in use|EADDRINUSE/i;

/**
 * The port a failing service could not bind, for the diagnosis. The log line names it when the
 * program says so (node: `EADDRINUSE: address already in use 127.0.0.1:8080`); busybox httpd only
 * says `bind: Address already in use`, so the port comes from the container's own configuration.
 */
export function portInUse(logs: string[], container: ContainerFacts | null): string | undefined {
  const line = logs.find((item) => IN_USE.test(item));
  if (line === undefined) return undefined;
  const fromLine = /:(\d{2,5})\b(?!.*:\d{2,5}\b)/.exec(line)?.[1] ?? /\bport\s+(\d{2,5})\b/i.exec(line)?.[1];
  if (fromLine) return fromLine;
  const bound = Object.values(container?.HostConfig.PortBindings ?? {})
    .flatMap((items) => items ?? [])
    .find((item) => item.HostPort)?.HostPort;
  if (bound) return bound;
  const args = container?.Config.Cmd ?? [];
  for (const [index, arg] of args.entries()) {
    if (/^(-p|--port|-port)$/.test(arg) && /^(?:[\d.]+:)?\d{2,5}$/.test(args[index + 1] ?? ''))
      return args[index + 1]!.split(':').pop();
    const listen = /(?:^|[^\w])(?:\d{1,3}(?:\.\d{1,3}){3}|localhost|0\.0\.0\.0|\[::\])?:(\d{2,5})$/.exec(arg)?.[1];
    if (listen) return listen;
  }
  const fromEnv = (container?.Config.Env ?? [])
    .map((item) => /^(?:\w*_)?PORT=(\d{2,5})$/.exec(item)?.[1])
    .find(Boolean);
  return fromEnv ?? 'unknown';
}
