import type { StepName } from '../../events/index.js';

/**
 * Lets at most one progress event through per `intervalMs` for each step: logs and --json must
 * not drown in progress. A step that starts again lets its next progress through at once.
 */
export function createStepThrottle(
  intervalMs: number,
  now: () => number,
): { allow(step: StepName): boolean; reset(step: StepName): void } {
  const last = new Map<StepName, number>();
  return {
    allow(step) {
      const time = now();
      const previous = last.get(step);
      if (previous !== undefined && time - previous < intervalMs) return false;
      last.set(step, time);
      return true;
    },
    reset(step) {
      last.delete(step);
    },
  };
}
