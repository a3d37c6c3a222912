import type { DowntimeBreakdown, StepName } from '../events/index.js';
import type { StepSpan } from './step-runner.js';
import { UPGRADE_STEPS } from './steps/index.js';

const COLUMNS: Partial<Record<StepName, keyof DowntimeBreakdown>> = {
  stopping: 'stop',
  backing_up: 'backup',
  applying: 'apply',
  migrating: 'migrations',
  starting: 'start',
  health_check: 'healthy',
};

function isDowntime(step: StepName): boolean {
  return UPGRADE_STEPS.some((row) => row.name === step && row.downtime);
}

/**
 * The downtime by step, from the spans of the steps the table marks `downtime`. Only what follows
 * the stop counts; the step the stop ran in (the backup stops the services itself) has the
 * `docker compose down` moved to `stop`, so the backup's column is the backup alone.
 */
export function downtimeBreakdown(
  spans: readonly StepSpan[],
  downtimeStartedAt: number | null,
  stopMs: number | null,
): DowntimeBreakdown {
  const breakdown: DowntimeBreakdown = { stop: 0, backup: 0, apply: 0, migrations: 0, start: 0, healthy: 0, other: 0 };
  if (downtimeStartedAt === null) return breakdown;
  for (const span of spans) {
    if (!isDowntime(span.step)) continue;
    const end = span.startedAt + span.ms;
    let part = end - Math.max(span.startedAt, downtimeStartedAt);
    if (part <= 0) continue;
    if (span.startedAt <= downtimeStartedAt && stopMs !== null) {
      const stop = Math.min(stopMs, part);
      breakdown.stop += stop;
      part -= stop;
    }
    breakdown[COLUMNS[span.step] ?? 'other'] += part;
  }
  return breakdown;
}

/** The parts' total, what downtime_ms should be within the few ms spent between steps. */
export function downtimeTotal(breakdown: DowntimeBreakdown): number {
  return Object.values(breakdown).reduce((sum, ms) => sum + ms, 0);
}
