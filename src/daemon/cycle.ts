/**
 * The daemon's decisions as pure functions (STYLE: decisions are data; effects sit at the edges).
 * Everything here is table-tested in test/daemon/cycle.test.ts.
 */
import { isInsideWindow, type TimeWindow } from '../config/index.js';

export { jitterDelayMs } from './timing.js';

/** Why a cycle only pre-stages: what a staged release is waiting for. */
export type WaitingFor = 'auto_apply' | 'window' | 'updates_lock';

export interface CycleFacts {
  now: Date;
  window: TimeWindow | undefined;
  autoApply: boolean;
  /** The application's own `[schedule] updates_lock` file exists: it must not be switched now. */
  updatesLockPresent: boolean;
  /** The version already staged and not yet installed, if any (only changes the wording). */
  staged?: string | null;
  /** As written in config.toml, for the reason; relative to the home. */
  updatesLockPath?: string;
}

export interface CycleAction {
  action: 'upgrade' | 'prestage';
  /** One line for logs, `history` (the upgrade's reason) and `status`. */
  reason: string;
  /** What a staged release waits for; null when the cycle may switch. */
  waitingFor: WaitingFor | null;
  waitingOnLock: boolean;
  /** Inside the maintenance window (true when none is configured): picks the rate limit. */
  insideWindow: boolean;
}

/** `02:00-05:00` back from minutes since midnight. */
export function formatWindow(window: TimeWindow): string {
  const clock = (minutes: number) =>
    `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
  return `${clock(window.startMinute)}-${clock(window.endMinute)}`;
}

/**
 * SPEC 10: inside the window (or with none), with auto_apply, and while the application does not
 * hold its updates.lock, a release found is installed; otherwise it is only pre-staged (download,
 * verify, extract, load images) so that the window is spent on the switch alone.
 */
export function planCycle(facts: CycleFacts): CycleAction {
  const insideWindow = isInsideWindow(facts.window, facts.now);
  const prestage = (waitingFor: WaitingFor, why: string): CycleAction => ({
    action: 'prestage',
    reason: `${why}: pre-staging only${facts.staged ? ` (${facts.staged} is staged)` : ''}`,
    waitingFor,
    waitingOnLock: waitingFor === 'updates_lock',
    insideWindow,
  });
  if (!facts.autoApply) return prestage('auto_apply', 'schedule.auto_apply is false');
  if (!insideWindow && facts.window)
    return prestage('window', `outside the maintenance window ${formatWindow(facts.window)}`);
  if (facts.updatesLockPresent)
    return prestage(
      'updates_lock',
      `the application holds its update lock ${facts.updatesLockPath ?? '(schedule.updates_lock)'}`,
    );
  return {
    action: 'upgrade',
    reason: facts.window
      ? `inside the maintenance window ${formatWindow(facts.window)}`
      : 'no maintenance window configured',
    waitingFor: null,
    waitingOnLock: false,
    insideWindow,
  };
}

/**
 * The download rate limit of a cycle, bytes/s (0 = none): `[schedule] rate_limit_outside_window`
 * outside the window (a metered link during the day), else `[download] rate_limit`.
 */
export function rateLimitFor(
  insideWindow: boolean,
  limits: { download: number; outsideWindow?: number | undefined },
): number {
  if (!insideWindow && limits.outsideWindow !== undefined) return limits.outsideWindow;
  return limits.download;
}

/** Cycles to skip after `failures` consecutive server failures: 0, 1, 3, 7, 15, … capped at `cap`. */
export function cyclesToSkip(failures: number, cap = 15): number {
  return failures <= 0 ? 0 : Math.min(cap, 2 ** Math.min(failures, 30) - 1);
}

/** The server (or the link to it) failed: back off. Other failures are the box's own. */
const SERVER_FAILURES = new Set(['E_NETWORK', 'E_HTTP', 'E_STALL']);

export function isServerFailure(code: string | undefined): boolean {
  return code !== undefined && SERVER_FAILURES.has(code);
}
