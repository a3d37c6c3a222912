/*
 * What the daemon's waiting parent needs to wait, with nothing heavy: no node-cron (its Intl time
 * arithmetic pages in ICU data), no config schema, no store.
 */

/**
 * A random delay in [0, jitter] so a fleet on the same cron line does not hit the server at once.
 * The random source is clamped, so a faulty one can never push the delay out of bounds.
 */
export function jitterDelayMs(jitterSeconds: number, random: () => number = Math.random): number {
  const value = random();
  const fraction = Number.isFinite(value) ? Math.max(0, Math.min(1, value)) : 0;
  return Math.floor(fraction * Math.max(0, jitterSeconds) * 1000);
}

/** What SIGTERM logs, by what it stops: nothing, a download (at once), a switch (after it). */
export const STOP_MESSAGES = {
  idle: 'daemon: stopping',
  aborting: 'daemon: stopping; the download stops now and resumes at the next run',
  finishing: 'daemon: stopping after the switch in progress finishes or rolls back',
} as const;

export const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** node-cron's rule (its missedExecutionTolerance): a time reached more than this late is missed, not run. */
export const LATE_TOLERANCE_MS = 1000;

/**
 * The planned times reached by `now`: the last one is run if it is at most the tolerance late,
 * the others are missed (the machine slept, or its clock stepped forward); `rest` is still ahead.
 */
export function reachedRuns(runs: number[], now: number): { due: number | null; missed: number[]; rest: number[] } {
  const reached = runs.filter((time) => time <= now);
  const rest = runs.filter((time) => time > now);
  const last = reached.at(-1);
  if (last !== undefined && now - last <= LATE_TOLERANCE_MS) return { due: last, missed: reached.slice(0, -1), rest };
  return { due: null, missed: reached, rest };
}
