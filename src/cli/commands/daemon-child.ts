import type { Command } from 'commander';
import { type Config, homePaths } from '../../config/index.js';
import {
  type ChildJob,
  type ChildMessage,
  type ChildRole,
  CycleRunner,
  type DaemonPorts,
  type DaemonSettings,
  formatWindow,
  lookOnce,
  nextRuns,
  PLANNED_RUNS,
  STOP_MESSAGES,
  STOP_SIGNALS,
  validateSchedule,
} from '../../daemon/index.js';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../../errors/index.js';
import { createLogger, type Logger, type LogLevel } from '../../log/index.js';
import { CLIENT_RESTART_EXIT_CODE } from '../../selfupdate/index.js';
import { recoverUnfinished } from '../../upgrade/index.js';
import { CliContext, createContext } from '../context.js';
import { globalOptions, isUsage, reportError } from '../options.js';
import { createCollaborators } from '../wiring.js';
import { type CycleHooks, cycleHooks, daemonPorts } from './daemon-work.js';
import { watchOptions } from './watch.js';

type DoneMessage = Extract<ChildMessage, { type: 'done' }>;

/** Webhooks still queued when a cycle ends are sent before the child exits, for this long at most. */
const FLUSH_MS = 30_000;
/** After a stop, as `nuwax daemon` always gave them at its exit. */
const FLUSH_ON_STOP_MS = 5000;

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, undefined, () => resolve());
  });
}

/** Says it is ready (with the settings, from the start child) and waits for the job; null when the parent is gone. */
function receiveJob(settings: DaemonSettings | undefined): Promise<ChildJob | null> {
  return new Promise((resolve) => {
    process.once('message', (job: ChildJob) => resolve(job));
    process.once('disconnect', () => resolve(null));
    void send({ type: 'ready', settings });
  });
}

function settingsOf(context: CliContext, nextRuns: number[]): DaemonSettings {
  const { schedule, health } = context.config;
  return {
    lockFile: context.paths.lockFile,
    home: context.home,
    configFile: context.configFile,
    config: context.config,
    schedule: schedule.check,
    jitterSeconds: schedule.jitter,
    window: schedule.window ? formatWindow(schedule.window) : null,
    autoApply: schedule.auto_apply,
    watchIntervalMs: health.watch * 1000,
    nextRuns,
  };
}

/**
 * `nuwax daemon --child ROLE`: one piece of a running daemon's work in a process that exits when
 * it is done (src/daemon/supervisor.ts). The daemon holds the home's lock for it; SIGTERM, SIGINT
 * or the daemon's end stop it as they stopped the daemon: a download at once, a switch after it ends.
 */
export async function runDaemonChild(command: Command, role: ChildRole): Promise<void> {
  const options = globalOptions(command);
  const level = options.logLevel ?? 'warn';
  const logger = createLogger(level, undefined, { human: false });
  let runner: CycleRunner | null = null;
  let hooks: CycleHooks | null = null;
  let stopSignal: string | null = null;
  let ended = false;
  const stop = (signal: string) => {
    if (stopSignal || ended) return;
    stopSignal = signal;
    logger.warn({ signal }, STOP_MESSAGES[runner ? runner.stop() : 'idle']);
    // Webhooks being sent at the end of the cycle get what the daemon's exit always gave them.
    void hooks?.flush(FLUSH_ON_STOP_MS);
  };
  for (const name of STOP_SIGNALS) process.on(name, stop);
  let working = false;
  // The daemon died (kill -9) during the work: stop as on SIGTERM; the lock it named is stale now.
  process.on('disconnect', () => {
    if (working) stop('daemon gone');
  });

  let context: CliContext | undefined;
  let code = 0;
  try {
    if (!process.send)
      throw new NuwaxError(ErrorCodes.E_USAGE, "--child is the daemon's own: it starts its children with it");
    const settings = role === 'start' ? await startSettings(command) : undefined;
    context = settings?.context;
    const job = await receiveJob(settings?.settings);
    if (job?.role === 'plan' && job.settings) {
      ended = true;
      await send({ type: 'done', nextRuns: await nextRuns(job.settings.schedule, PLANNED_RUNS) });
    } else if (job?.settings) {
      working = true;
      context ??= childContext(job.settings, options.json === true, logger, level);
      hooks = cycleHooks(context, {});
      const ports = daemonPorts(context, job.daemonPid);
      runner = new CycleRunner({
        config: context.config,
        home: context.home,
        store: context.store,
        logger: context.logger,
        ports,
        onEvent: hooks.onEvent,
        jitter: false,
      });
      if (stopSignal) runner.stop();
      const done = await work(job, context, { runner, hooks, ports });
      await hooks.flush(stopSignal ? FLUSH_ON_STOP_MS : FLUSH_MS);
      ended = true;
      // The next times from now, after this work: those it ran over are skipped, as node-cron's noOverlap did.
      await send({ type: 'done', ...done, nextRuns: await nextRuns(job.settings.schedule, PLANNED_RUNS) });
    }
  } catch (error) {
    reportError(error, options, undefined, context?.logger ?? logger);
    code = isUsage(error) ? 2 : 1;
  } finally {
    ended = true;
    context?.close();
  }
  // Nothing may keep this process alive after its work (an HTTP keep-alive socket): the daemon waits for it.
  process.exit(code);
}

/** The context of a cycle or a look: the config the daemon loaded at its start, not the file as it is now. */
function childContext(settings: DaemonSettings, json: boolean, logger: Logger, level: LogLevel): CliContext {
  const config = settings.config as Config;
  const paths = homePaths(settings.home, config, settings.configFile);
  return new CliContext(settings.home, config, settings.configFile, paths, json, logger, level);
}

async function startSettings(command: Command): Promise<{ context: CliContext; settings: DaemonSettings }> {
  const context = await createContext(command);
  validateSchedule(context.config.schedule.check);
  return { context, settings: settingsOf(context, await nextRuns(context.config.schedule.check, PLANNED_RUNS)) };
}

async function work(
  job: ChildJob,
  context: CliContext,
  { runner, hooks, ports }: { runner: CycleRunner; hooks: CycleHooks; ports: DaemonPorts },
): Promise<Omit<DoneMessage, 'type'>> {
  const { logger, config, paths, store } = context;
  switch (job.role) {
    case 'plan':
      return {};
    case 'start':
      await runner
        .guard(() => ports.recover?.(hooks.onEvent) ?? Promise.resolve())
        .catch((error: unknown) => logger.error({ err: error }, 'daemon: recovery of an interrupted upgrade failed'));
      return {};
    case 'watch': {
      const watch = watchOptions(context, hooks.announce, job.daemonPid);
      const state = job.watch;
      if (watch)
        await runner
          .guard(() => lookOnce(watch, state))
          .catch((error: unknown) => logger.error({ err: error }, 'watch: the look failed'));
      return { watch: state };
    }
    case 'cycle': {
      runner.cycles = job.cycle - 1;
      runner.failures = job.backoff.failures;
      runner.skipLeft = job.backoff.skipLeft;
      try {
        // One process at a time works on the home: an unfinished upgrade now is one whose process was killed.
        await runner
          .guard(() =>
            recoverUnfinished({
              config,
              paths,
              store,
              collaborators: createCollaborators(context),
              logger,
              onEvent: hooks.onEvent,
            }),
          )
          .catch((error: unknown) => logger.error({ err: error }, 'daemon: recovery of an interrupted upgrade failed'));
        const outcome = await runner.tick({ jitterMs: job.jitterMs });
        const switched = await hooks.afterCycle(outcome).catch((error: unknown) => {
          logger.warn({ err: error }, 'daemon: after-cycle hook failed');
          return false;
        });
        return {
          backoff: { failures: runner.failures, skipLeft: runner.skipLeft },
          exitWith: switched ? CLIENT_RESTART_EXIT_CODE : undefined,
        };
      } catch (error) {
        logger.error(
          { err: error, code: toNuwaxError(error).code },
          'daemon: cycle crashed; the next one runs on schedule',
        );
        return { backoff: job.backoff };
      }
    }
  }
}
