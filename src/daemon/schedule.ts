import cron from 'node-cron';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import type { Logger } from '../log/index.js';

/*
 * The schedule by node-cron, apart from cycle.ts and the config schema. Its time arithmetic goes
 * through Intl, which pages in ICU data: the daemon's waiting parent gets its times from a child.
 */

/** node-cron's own warnings (missed executions after a suspend) go to our log, not the console. */
export function cronLogger(logger: Logger) {
  return {
    info: (message: string) => logger.debug({ source: 'node-cron' }, message),
    warn: (message: string) => logger.warn({ source: 'node-cron' }, message),
    error: (message: string | Error, error?: Error) =>
      logger.error({ source: 'node-cron', err: error ?? message }, String(message)),
    debug: (message: string | Error, error?: Error) =>
      logger.debug({ source: 'node-cron', err: error }, String(message)),
  };
}

/** `[schedule] check` must be a cron line node-cron accepts (5 fields, or 6 with seconds). */
export function validateSchedule(expression: string): void {
  const validation = cron.validateDetailed(expression);
  if (!validation.valid) {
    const problems = validation.errors.map((error) => `${error.field}: ${error.message}`).join('; ');
    throw new NuwaxError(
      ErrorCodes.E_CONFIG,
      `schedule.check: "${expression}" is not a cron expression (${problems || 'expected 5 or 6 fields'})`,
    );
  }
}

/** The next `count` times `[schedule] check` fires after now (ms): the waiting daemon sleeps until each. */
export async function nextRuns(expression: string, count: number): Promise<number[]> {
  const task = cron.createTask(expression, () => undefined);
  try {
    return task.getNextRuns(count).map((date) => date.getTime());
  } finally {
    await task.destroy();
  }
}
