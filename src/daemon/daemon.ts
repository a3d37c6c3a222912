import type { EventEmitter } from 'node:events';
import cron from 'node-cron';
import { toNuwaxError } from '../errors/index.js';
import { formatWindow } from './cycle.js';
import { acquireLock } from './lock.js';
import { cronLogger, validateSchedule } from './schedule.js';
import { STOP_MESSAGES, STOP_SIGNALS } from './timing.js';
import { type CycleOutcome, CycleRunner, type CycleRunnerOptions } from './runner.js';
import { startWatch, type WatchOptions } from './watch.js';

export { validateSchedule } from './schedule.js';

export interface DaemonOptions extends CycleRunnerOptions {
  /** data/nuwax.lock: one daemon or upgrade per home. */
  lockFile: string;
  /** One cycle now, then exit (system cron, tests). */
  once?: boolean;
  /** Named in the lock file (default 'nuwax daemon'). */
  command?: string;
  /** Where SIGTERM/SIGINT come from (default: process). */
  signals?: EventEmitter;
  /** After each cycle, skipped ones too (the CLI prints and reports them); errors are logged. */
  afterCycle?: (outcome: CycleOutcome) => Promise<void> | void;
  /** `[health] watch`: the live application's look between upgrades. */
  watch?: WatchOptions;
}

export interface DaemonHandle {
  /** What SIGTERM does: stop scheduling, abort a download, let a switch finish, release the lock. */
  stop(signal?: string): void;
  /** The exit code: 0 after a stop; with `once`, the cycle's (SPEC 8). */
  done: Promise<number>;
}

/** The exit code of a `--once` cycle: the result's (SPEC 8), or 0 when it was stopped or had nothing to do. */
export async function exitCodeOf(outcome: CycleOutcome): Promise<number> {
  if (!outcome.result || outcome.aborted) return 0;
  // Loaded here, not at the top: `status` imports this folder for the lock and must stay light.
  const { exitCodeFor } = await import('../upgrade/index.js');
  return exitCodeFor(outcome.result);
}

/**
 * `nuwax daemon` (SPEC 10): takes the home's lock, finishes an interrupted upgrade, then runs a
 * cycle at each tick of `[schedule] check` until SIGTERM or SIGINT.
 */
export function startDaemon(options: DaemonOptions): DaemonHandle {
  const runner = new CycleRunner(options);
  const signals = options.signals ?? process;
  const { logger } = options;
  let stopRequested = false;
  let wake: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const stop = (signal = 'stop') => {
    if (stopRequested) {
      logger.warn({ signal }, 'daemon: already stopping; waiting for the switch to finish or roll back');
      return;
    }
    stopRequested = true;
    logger.warn({ signal }, STOP_MESSAGES[runner.stop()]);
    wake();
  };
  const onSignal = (signal: string) => stop(signal);
  for (const name of STOP_SIGNALS) signals.on(name, onSignal);

  const run = async (): Promise<number> => {
    if (!options.once) validateSchedule(options.config.schedule.check);
    const lock = await acquireLock(
      options.lockFile,
      options.command ?? (options.once ? 'nuwax daemon --once' : 'nuwax daemon'),
    );
    try {
      if (!options.once) return await scheduleCycles(runner, options, stopped);
      const outcome = await runner.tick();
      await afterCycle(options, outcome);
      return await exitCodeOf(outcome);
    } finally {
      await lock.release();
    }
  };
  const done = run().finally(() => {
    for (const name of STOP_SIGNALS) signals.off(name, onSignal);
  });
  return { stop, done };
}

async function afterCycle(options: DaemonOptions, outcome: CycleOutcome): Promise<void> {
  if (!options.afterCycle) return;
  await Promise.resolve(options.afterCycle(outcome)).catch((error: unknown) =>
    options.logger.warn({ err: error }, 'daemon: after-cycle hook failed'),
  );
}

/** Recovery first (SPEC 9), then a cycle per cron tick until `stopped`; waits for the cycle in flight. */
async function scheduleCycles(runner: CycleRunner, options: DaemonOptions, stopped: Promise<void>): Promise<number> {
  const { logger, config } = options;
  const { recover } = options.ports;
  if (recover) {
    await runner
      .guard(() => recover(options.onEvent ?? (() => undefined)))
      .catch((error: unknown) => logger.error({ err: error }, 'daemon: recovery of an interrupted upgrade failed'));
  }
  if (runner.stopped) return 0;
  let inflight: Promise<void> = Promise.resolve();
  const fire = () => {
    inflight = runner
      .tick()
      .then((outcome) => afterCycle(options, outcome))
      .catch((error: unknown) =>
        logger.error(
          { err: error, code: toNuwaxError(error).code },
          'daemon: cycle crashed; the next one runs on schedule',
        ),
      );
    return inflight;
  };
  const task = cron.schedule(config.schedule.check, fire, {
    name: 'nuwax-daemon',
    noOverlap: true,
    logger: cronLogger(logger),
  });
  const window = config.schedule.window ? formatWindow(config.schedule.window) : null;
  logger.info(
    {
      schedule: config.schedule.check,
      next: task.getNextRun()?.toISOString() ?? null,
      window,
      autoApply: config.schedule.auto_apply,
    },
    'daemon: started',
  );
  const watch = options.watch ? startWatch(options.watch, runner) : null;
  await stopped;
  await task.destroy();
  await watch?.stop();
  await inflight;
  logger.info({ cycles: runner.cycles }, 'daemon: stopped');
  return 0;
}
