import type { ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { toNuwaxError } from '../errors/index.js';
import type { LineLogger } from '../log/lines.js';
import { acquireLock, type HeldLock } from './lock.js';
import { jitterDelayMs, reachedRuns, STOP_MESSAGES, STOP_SIGNALS } from './timing.js';
import type { WatchState } from './watch.js';

/*
 * The long-running `nuwax daemon` as two processes: this parent only waits (the schedule's times, the
 * jitter, the watch interval, the home's lock) and every piece of work (the recovery at start, each
 * cycle with what follows it, each look of the watch) runs in a child process of the same program
 * that exits when it is done, so the upgrade machinery never stays resident while the daemon waits.
 * This file must import nothing heavy: no config schema, no store, no upgrade, no HTTP client.
 */

/**
 * What a child does: the recovery at start, one cycle, one look of `[health] watch`, or only the
 * next times of the schedule (when the parent ran out of them: cycles that died one after another).
 */
export type ChildRole = 'start' | 'cycle' | 'watch' | 'plan';

/** What the parent must know of the config, read once by the start child (the config's one source of truth). */
export interface DaemonSettings {
  lockFile: string;
  home: string;
  configFile: string | undefined;
  /** The config as loaded at start, handed to every child so that each works with the same one, as before. */
  config: unknown;
  schedule: string;
  jitterSeconds: number;
  /** `02:00-05:00`, or null without a window (for the start line). */
  window: string | null;
  autoApply: boolean;
  /** `[health] watch` in ms; 0 = off. */
  watchIntervalMs: number;
  /** The next times of `[schedule] check` (ms), by node-cron in the child. */
  nextRuns: number[];
}

/** The backoff after server failures: it spans cycles, so the parent carries it from child to child. */
export interface BackoffState {
  failures: number;
  skipLeft: number;
}

/** What the parent hands a child once it is ready. */
export interface ChildJob extends JobFields {
  role: ChildRole;
  /** The daemon's pid (this parent): the one named in the lock and in each upgrade's record. */
  daemonPid: number;
}

interface JobFields {
  settings: DaemonSettings | null;
  cycle: number;
  /** The jitter the parent waited before this cycle. */
  jitterMs: number;
  backoff: BackoffState;
  watch: WatchState;
}

/** Child → parent. */
export type ChildMessage =
  | { type: 'ready'; settings?: DaemonSettings }
  | {
      type: 'done';
      backoff?: BackoffState;
      watch?: WatchState;
      /** The daemon must stop and exit with this code (75 after the client updated itself). */
      exitWith?: number;
      /** The next times of the schedule from the end of this child's work (ms). */
      nextRuns?: number[];
    };

type DoneMessage = Extract<ChildMessage, { type: 'done' }>;

export interface SupervisorOptions {
  logger: LineLogger;
  /** Starts this program as a child in `role`, with an IPC channel, its stdout and stderr those of the daemon. */
  spawnChild(role: ChildRole): ChildProcess;
  /** Where SIGTERM/SIGINT come from (default: process). */
  signals?: EventEmitter;
  random?: () => number;
}

/** One child process: its ready message, its done message, its exit; a message it never sent is null. */
interface ChildRun {
  ready: Promise<Extract<ChildMessage, { type: 'ready' }> | null>;
  done: Promise<DoneMessage | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** It said it is ready: its signal handlers are in place. */
  isReady: boolean;
  /** It sent its done message: what is left is its exit. */
  finished: boolean;
  send(job: ChildJob): void;
  kill(signal: NodeJS.Signals): void;
  /** No job: the child exits as soon as it sees the channel close. */
  dismiss(): void;
}

function watchChild(child: ChildProcess, logger: LineLogger): ChildRun {
  let onReady: (message: Extract<ChildMessage, { type: 'ready' }> | null) => void = () => undefined;
  let onDone: (message: DoneMessage | null) => void = () => undefined;
  const run: ChildRun = {
    ready: new Promise((resolve) => {
      onReady = resolve;
    }),
    done: new Promise((resolve) => {
      onDone = resolve;
    }),
    exited: new Promise((resolve) => {
      const exited = (code: number | null, signal: NodeJS.Signals | null) => {
        onReady(null);
        onDone(null);
        resolve({ code, signal });
      };
      child.once('exit', exited);
      // A fork that could not start at all (EAGAIN, ENOMEM) has no pid and never emits 'exit'.
      child.once('error', () => {
        if (child.pid === undefined) exited(null, null);
      });
    }),
    isReady: false,
    finished: false,
    send: (job) => {
      if (child.connected) child.send(job);
    },
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    dismiss: () => {
      if (child.connected) child.disconnect();
    },
  };
  child.on('message', (message: ChildMessage) => {
    if (message.type === 'ready') {
      run.isReady = true;
      onReady(message);
    }
    if (message.type === 'done') {
      run.finished = true;
      onDone(message);
    }
  });
  child.on('error', (error) => {
    logger.error(
      { err: error, code: toNuwaxError(error).code },
      'daemon: a child process failed to start or to listen',
    );
  });
  return run;
}

/** Long waits are cut into these, so that a step of the wall clock (NTP on a box without RTC) is seen. */
const MAX_SLEEP_MS = 60_000;
/** How many next times a child computes: a cycle refreshes them, so only dying cycles use them up. */
export const PLANNED_RUNS = 100;

/**
 * `nuwax daemon` (SPEC 10), the waiting parent: a start child loads the config and says what the
 * parent needs of it, then finishes an interrupted upgrade (SPEC 9) under the parent's lock; then
 * a cycle child runs at each time of `[schedule] check` until SIGTERM or SIGINT, which is forwarded
 * to the child at work (a download stops at once, a switch finishes). Resolves with the exit code.
 */
export async function superviseDaemon(options: SupervisorOptions): Promise<number> {
  return new Supervisor(options).run();
}

class Supervisor {
  private stopRequested = false;
  private forward: NodeJS.Signals = 'SIGTERM';
  private current: ChildRun | null = null;
  private readonly stopping = new AbortController();
  private busy = false;
  private exitWith = 0;
  private cycles = 0;
  private backoff: BackoffState = { failures: 0, skipLeft: 0 };
  private watchState: WatchState = { attempts: [], boundReported: false };
  private runs: number[] = [];

  constructor(private readonly options: SupervisorOptions) {}

  private get logger(): LineLogger {
    return this.options.logger;
  }

  async run(): Promise<number> {
    const signals = this.options.signals ?? process;
    const onSignal = (signal: string) => this.stop(signal);
    for (const name of STOP_SIGNALS) signals.on(name, onSignal);
    try {
      return await this.start();
    } finally {
      for (const name of STOP_SIGNALS) signals.off(name, onSignal);
    }
  }

  stop(signal = 'stop'): void {
    if (this.stopRequested) {
      this.logger.warn({ signal }, 'daemon: already stopping; waiting for the switch to finish or roll back');
      return;
    }
    this.stopRequested = true;
    this.forward = signal === 'SIGINT' ? 'SIGINT' : 'SIGTERM';
    this.stopping.abort();
    // A child at work says itself what the stop does to it (a download stops, a switch finishes);
    // one still starting gets the signal once it is ready for it (see begin).
    const child = this.current;
    if (!child || child.finished) this.logger.warn({ signal }, STOP_MESSAGES.idle);
    else if (child.isReady) child.kill(this.forward);
  }

  /** The child is ready (its handlers are in place): a stop that came meanwhile reaches it now, then its job. */
  private begin(run: ChildRun, role: ChildRole, job: JobFields): void {
    if (this.stopRequested) run.kill(this.forward);
    run.send({ ...job, role, daemonPid: process.pid });
  }

  private spawn(role: ChildRole): ChildRun {
    const child = this.options.spawnChild(role);
    const run = watchChild(child, this.logger);
    this.current = run;
    this.logger.debug({ role, pid: child.pid }, 'daemon: child process started');
    void run.exited.then((exit) => {
      if (this.current === run) this.current = null;
      this.logger.debug(
        { role, pid: child.pid, exitCode: exit.code, signal: exit.signal },
        'daemon: child process exited',
      );
    });
    return run;
  }

  /** Runs `role` in a child to its exit; `done` is null when it ended without saying it was done. */
  private async runChild(role: ChildRole, job: JobFields) {
    const run = this.spawn(role);
    if (await run.ready) this.begin(run, role, job);
    const done = await run.done;
    const exit = await run.exited;
    if (done?.nextRuns) this.runs = done.nextRuns;
    if (done?.exitWith !== undefined) {
      this.exitWith = done.exitWith;
      this.stop('client update');
    }
    return { done, exit };
  }

  private async start(): Promise<number> {
    const start = this.spawn('start');
    const ready = await start.ready;
    if (!ready?.settings) {
      // The child reported why (a config error, as `nuwax daemon` always did) and exits with its code.
      const exit = await start.exited;
      return this.stopRequested ? 0 : (exit.code ?? 1);
    }
    const settings = ready.settings;
    let lock: HeldLock;
    try {
      lock = await acquireLock(settings.lockFile, 'nuwax daemon');
    } catch (error) {
      start.dismiss();
      await start.exited;
      throw error;
    }
    try {
      const job = this.job(settings);
      this.begin(start, 'start', job);
      const recovered = await start.done;
      const exit = await start.exited;
      if (!recovered && !this.stopRequested)
        this.logger.error(
          { exitCode: exit.code, signal: exit.signal },
          'daemon: recovery of an interrupted upgrade failed; its process died',
        );
      if (this.stopRequested) return 0;
      // Times passed during the recovery are not missed: the schedule starts after it, as it always did.
      this.runs = (recovered?.nextRuns ?? settings.nextRuns).filter((time) => time > Date.now());
      return await this.schedule(settings);
    } finally {
      await lock.release();
    }
  }

  private job(settings: DaemonSettings, fields: Partial<JobFields> = {}): JobFields {
    return {
      settings,
      cycle: this.cycles,
      jitterMs: 0,
      backoff: this.backoff,
      watch: this.watchState,
      ...fields,
    };
  }

  private async schedule(settings: DaemonSettings): Promise<number> {
    this.logger.info(
      {
        schedule: settings.schedule,
        next: this.runs[0] === undefined ? null : new Date(this.runs[0]).toISOString(),
        window: settings.window,
        autoApply: settings.autoApply,
      },
      'daemon: started',
    );
    let looking: Promise<void> = Promise.resolve();
    const watchTimer =
      settings.watchIntervalMs > 0
        ? setInterval(() => {
            if (this.busy || this.stopRequested) return;
            looking = this.look(settings).catch((error: unknown) =>
              this.logger.error({ err: error }, 'watch: the look failed'),
            );
          }, settings.watchIntervalMs)
        : null;
    try {
      while (!this.stopRequested) {
        await this.waitForRun(settings);
        if (this.stopRequested) break;
        await this.tick(settings).catch((error: unknown) =>
          this.logger.error(
            { err: error, code: toNuwaxError(error).code },
            'daemon: cycle crashed; the next one runs on schedule',
          ),
        );
      }
    } finally {
      if (watchTimer) clearInterval(watchTimer);
      await looking;
    }
    this.logger.info({ cycles: this.cycles }, 'daemon: stopped');
    return this.exitWith;
  }

  /** Sleeps until the next planned time is reached (or the stop); times missed meanwhile are logged. */
  private async waitForRun(settings: DaemonSettings): Promise<void> {
    for (;;) {
      if (this.runs.length === 0) {
        // Every planned time used up by cycles that died: a child plans the next ones.
        this.busy = true;
        await this.runChild('plan', this.job(settings)).finally(() => {
          this.busy = false;
        });
        if (this.runs.length === 0) await this.sleep(MAX_SLEEP_MS);
      }
      if (this.stopRequested) return;
      const next = this.runs[0];
      if (next !== undefined && next > Date.now()) await this.sleep(Math.min(next - Date.now(), MAX_SLEEP_MS));
      if (this.stopRequested) return;
      const { due, missed, rest } = reachedRuns(this.runs, Date.now());
      this.runs = rest;
      for (const time of missed)
        this.logger.warn(
          { at: new Date(time).toISOString() },
          'daemon: missed the cycle at this time (the machine slept or its clock moved); ' +
            'the next one runs on schedule',
        );
      if (due !== null) return;
    }
  }

  private async sleep(ms: number): Promise<void> {
    await delay(ms, undefined, { signal: this.stopping.signal }).catch(() => undefined);
  }

  private async tick(settings: DaemonSettings): Promise<void> {
    const cycle = ++this.cycles;
    if (this.busy) {
      this.logger.info({ cycle }, 'daemon: the previous cycle still runs; this one is skipped');
      return;
    }
    this.busy = true;
    try {
      // A cycle skipped by the backoff starts at once; others wait the jitter here, not in a child.
      const jitterMs = this.backoff.skipLeft > 0 ? 0 : jitterDelayMs(settings.jitterSeconds, this.options.random);
      if (jitterMs > 0) await this.sleep(jitterMs);
      if (this.stopRequested) return;
      const { done, exit } = await this.runChild('cycle', this.job(settings, { cycle, jitterMs }));
      if (done?.backoff) this.backoff = done.backoff;
      // The times it ran over are skipped, as node-cron's noOverlap did.
      this.runs = this.runs.filter((time) => time > Date.now());
      // Killed (kill -9, the OOM killer): what it left half done is recovered by the next cycle.
      if (!done && !this.stopRequested)
        this.logger.error(
          { cycle, exitCode: exit.code, signal: exit.signal },
          'daemon: cycle crashed; the next one runs on schedule',
        );
    } finally {
      this.busy = false;
    }
  }

  private async look(settings: DaemonSettings): Promise<void> {
    this.busy = true;
    try {
      const { done, exit } = await this.runChild('watch', this.job(settings));
      if (done?.watch) this.watchState = done.watch;
      if (!done && !this.stopRequested)
        this.logger.error({ exitCode: exit.code, signal: exit.signal }, 'watch: the look failed');
    } finally {
      this.busy = false;
    }
  }
}
