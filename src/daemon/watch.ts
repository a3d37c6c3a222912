import type { LogEvent } from '../events/index.js';
import type { Logger } from '../log/index.js';

const HOUR_MS = 3_600_000;

/** What one look at the live application leads to; a pure function of the facts, tested by a table. */
export type WatchDecision = 'healthy' | 'report' | 'repair' | 'bound';

export function decideWatch(input: {
  criticalDown: string[];
  autoRepair: boolean;
  /** When the repairs of the last hour started (ms). */
  attempts: number[];
  now: number;
  maxPerHour: number;
}): WatchDecision {
  if (input.criticalDown.length === 0) return 'healthy';
  if (!input.autoRepair) return 'report';
  const recent = input.attempts.filter((at) => input.now - at < HOUR_MS).length;
  return recent < input.maxPerHour ? 'repair' : 'bound';
}

export interface WatchOptions {
  intervalMs: number;
  autoRepair: boolean;
  maxPerHour: number;
  /** The critical services that are down now. */
  check(): Promise<string[]>;
  /** `repair failed-startup`; a one-line account of what it did. */
  repair(): Promise<string>;
  /** To the webhooks, whatever the run state. */
  announce(event: LogEvent): void;
  logger: Logger;
  now?: () => number;
}

/** The cycle runner, as the watch needs it: never look or repair while an upgrade runs. */
export interface WatchGuard {
  readonly busy: boolean;
  guard<T>(work: () => Promise<T>): Promise<T>;
}

/** What the watch remembers between looks; the daemon carries it from one cycle process to the next. */
export interface WatchState {
  /** When the repairs of the last hour started (ms). */
  attempts: number[];
  /** The bound of repairs an hour was reached and said once. */
  boundReported: boolean;
}

/** One look at the live application, and a repair when one is due; updates `state`. */
export async function lookOnce(options: WatchOptions, state: WatchState): Promise<void> {
  const now = options.now ?? Date.now;
  const criticalDown = await options.check();
  // Older attempts no longer count toward the bound: the list stays as small as the bound.
  state.attempts = state.attempts.filter((at) => now() - at < HOUR_MS);
  const decision = decideWatch({
    criticalDown,
    autoRepair: options.autoRepair,
    attempts: state.attempts,
    now: now(),
    maxPerHour: options.maxPerHour,
  });
  if (decision === 'healthy') state.boundReported = false;
  if (decision === 'healthy') return;
  const down = criticalDown.join(', ');
  if (decision === 'report' || (decision === 'bound' && state.boundReported)) {
    options.logger.warn({ down }, 'watch: a critical service is down');
    return;
  }
  if (decision === 'bound') {
    state.boundReported = true;
    const message =
      `auto-repair: ${down} still down; ` + `the bound of ${options.maxPerHour} repairs an hour is reached`;
    options.announce({ type: 'log', level: 'error', message: `${message}, nothing more is tried this hour` });
    return;
  }
  state.attempts.push(now());
  const done = await options.repair();
  options.announce({ type: 'log', level: 'warn', message: `auto-repair: ${down} was down; ${done}` });
}

/**
 * `[health] watch`: between upgrades, look at the live application every interval and, with
 * `auto_repair`, run `repair failed-startup` when a critical service is down, at most
 * `auto_repair_max_per_hour` times an hour; the bound, once reached, is reported once.
 */
export function startWatch(options: WatchOptions, runner: WatchGuard): { stop(): Promise<void> } {
  const state: WatchState = { attempts: [], boundReported: false };
  let inflight: Promise<void> = Promise.resolve();
  const look = async (): Promise<void> => {
    if (runner.busy) return;
    await runner.guard(() => lookOnce(options, state));
  };
  const timer = setInterval(() => {
    inflight = look().catch((error: unknown) => options.logger.error({ err: error }, 'watch: the look failed'));
  }, options.intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await inflight;
    },
  };
}
