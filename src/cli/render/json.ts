/**
 * `nuwax upgrade --json` (SPEC 11): one JSON object per line for every event, progress at most
 * twice a second per step, and last the SPEC 8 result object itself, so that
 * `nuwax upgrade --json | tail -1` is the result.
 */
import type { UpgradeListener } from '../../events/index.js';
import { createStepThrottle } from './throttle.js';

export interface JsonRendererOptions {
  /** At most one progress line per step in this time (default 500 ms). */
  progressIntervalMs?: number;
  now?: () => number;
}

export function createJsonRenderer(write: (line: string) => void, options: JsonRendererOptions = {}): UpgradeListener {
  const now = options.now ?? Date.now;
  const throttle = createStepThrottle(options.progressIntervalMs ?? 500, now);
  return (event) => {
    switch (event.type) {
      case 'result':
        // Not wrapped: the last line is exactly what `--json` prints for every other command.
        write(JSON.stringify(event.result));
        return;
      case 'progress': {
        // The completing event goes through too, so a reader sees every step reach its total.
        const complete = event.total !== null && event.done >= event.total;
        if (!throttle.allow(event.step) && !complete) return;
        break;
      }
      case 'step':
        if (event.status === 'running') throttle.reset(event.step);
        break;
      default:
        break;
    }
    write(JSON.stringify({ ...event, time: new Date(now()).toISOString() }));
  };
}
