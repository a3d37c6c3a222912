import { isInsideWindow, type TimeWindow } from '../config/index.js';

export type CycleAction = { action: 'upgrade' | 'prestage'; reason: string; waitingOnLock: boolean };

/**
 * SPEC 10, a pure decision: inside the window a found release is installed; outside it, or with
 * auto_apply off, or while the application holds its updates.lock, it is only pre-staged.
 */
export function planCycle(facts: { now: Date; window: TimeWindow | undefined; autoApply: boolean; updatesLockPresent: boolean }): CycleAction {
  if (!facts.autoApply) return { action: 'prestage', reason: 'schedule.auto_apply is false: pre-staging only', waitingOnLock: false };
  if (!isInsideWindow(facts.window, facts.now)) return { action: 'prestage', reason: 'outside the maintenance window: pre-staging only', waitingOnLock: false };
  if (facts.updatesLockPresent) return { action: 'prestage', reason: 'the application holds its updates.lock: waiting to apply', waitingOnLock: true };
  return { action: 'upgrade', reason: 'inside the maintenance window', waitingOnLock: false };
}

/** A random delay in [0, jitter] seconds so a fleet does not hit the server at once. */
export function jitterDelayMs(jitterSeconds: number, random: () => number = Math.random): number {
  return Math.floor(Math.max(0, Math.min(1, random())) * jitterSeconds * 1000);
}

/** Cycles to skip after `failures` consecutive server failures: 0, 1, 3, 7, … capped. */
export function cyclesToSkip(failures: number, cap = 15): number {
  return failures <= 0 ? 0 : Math.min(cap, 2 ** failures - 1);
}
