import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Config } from '../config/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { isSwitchStep, type UpgradeEvent, type UpgradeListener } from '../events/index.js';
import { exists, formatBytes } from '../fsutil/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../state/index.js';
import { readStaged, type UpgradeResult } from '../upgrade/index.js';
import {
  type CycleAction,
  cyclesToSkip,
  formatWindow,
  isServerFailure,
  jitterDelayMs,
  planCycle,
  rateLimitFor,
  type WaitingFor,
} from './cycle.js';

/** What one cycle asks of the upgrade: `runUpgrade` with trigger 'schedule', wired by the CLI. */
export interface CycleRequest {
  downloadOnly: boolean;
  reason: string;
  /** Download rate limit for this cycle, bytes/s (0 = none). */
  rateLimit: number;
  signal: AbortSignal;
  onEvent: UpgradeListener;
}

export interface DaemonPorts {
  upgrade(request: CycleRequest): Promise<UpgradeResult>;
  /**
   * The version the server offers now, or null when nothing newer. Optional: with it, a cycle that
   * would only pre-stage the release already staged asks the server and stops there, instead of
   * hashing, extracting and recording the same release again every 30 minutes.
   */
  offered?(signal: AbortSignal): Promise<string | null>;
  /** SPEC 9: finish an interrupted upgrade when the daemon starts, not at the first tick. */
  recover?(onEvent: UpgradeListener): Promise<unknown>;
}

export interface CycleRunnerOptions {
  config: Config;
  home: string;
  store: Store;
  logger: Logger;
  ports: DaemonPorts;
  /** Renderers and webhooks. */
  onEvent?: UpgradeListener;
  /** Wait [0, schedule.jitter] before a cycle (default true). */
  jitter?: boolean;
  maxSkip?: number;
  now?: () => Date;
  random?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export type SkipReason = 'backoff' | 'already_staged' | 'stopping' | 'busy';

export interface CycleOutcome {
  cycle: number;
  skipped: SkipReason | null;
  plan: CycleAction | null;
  result: UpgradeResult | null;
  rateLimit: number | null;
  jitterMs: number;
  /** The daemon's stop aborted this cycle's download or preparation. */
  aborted: boolean;
  ms: number;
}

/** Stored in kv 'daemon:waiting' and printed by `nuwax status`. */
export interface WaitingRecord {
  reason: string;
  since: string;
  version: string;
  waiting_for: WaitingFor;
}

/**
 * One daemon cycle at a time (SPEC 10): back off after server failures, wait the jitter, decide
 * upgrade or pre-stage, run it, record what the staged release waits for, count failures.
 * `stop()` aborts a download or preparation at once and lets a switch finish.
 */
export class CycleRunner {
  failures = 0;
  skipLeft = 0;
  cycles = 0;
  private running = false;
  private current: { controller: AbortController; switching: boolean } | null = null;
  private readonly stopping = new AbortController();
  private readonly now: () => Date;

  constructor(private readonly options: CycleRunnerOptions) {
    this.now = options.now ?? (() => new Date());
  }

  get busy(): boolean {
    return this.running;
  }

  get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  /** Marks work that must not be aborted (recovery at start) as a switch. */
  async guard<T>(work: () => Promise<T>): Promise<T> {
    this.running = true;
    this.current = { controller: new AbortController(), switching: true };
    try {
      return await work();
    } finally {
      this.current = null;
      this.running = false;
    }
  }

  /** 'idle': nothing running; 'aborting': a download stops now; 'finishing': a switch runs to its end. */
  stop(): 'idle' | 'aborting' | 'finishing' {
    this.stopping.abort();
    if (!this.current) return 'idle';
    if (this.current.switching) return 'finishing';
    this.current.controller.abort(
      new NuwaxError(ErrorCodes.E_CANCELLED, 'The daemon is stopping; the download resumes at the next run'),
    );
    return 'aborting';
  }

  /** With `waited`, the jitter was waited already (by the daemon's parent process): the cycle starts now. */
  async tick(waited?: { jitterMs: number }): Promise<CycleOutcome> {
    const started = Date.now();
    const cycle = ++this.cycles;
    const outcome = (fields: Partial<CycleOutcome>): CycleOutcome => ({
      cycle,
      skipped: null,
      plan: null,
      result: null,
      rateLimit: null,
      jitterMs: 0,
      aborted: false,
      ms: Date.now() - started,
      ...fields,
    });
    if (this.stopped) return outcome({ skipped: 'stopping' });
    if (this.running) {
      this.options.logger.info({ cycle }, 'daemon: the previous cycle still runs; this one is skipped');
      return outcome({ skipped: 'busy' });
    }
    this.running = true;
    try {
      if (this.skipLeft > 0) {
        this.skipLeft -= 1;
        this.options.logger.info(
          { cycle, failures: this.failures, skipLeft: this.skipLeft },
          'daemon: backing off after server failures; cycle skipped',
        );
        return this.record(outcome({ skipped: 'backoff' }));
      }
      let jitterMs = waited?.jitterMs ?? 0;
      if (!waited && this.options.jitter !== false)
        jitterMs = jitterDelayMs(this.options.config.schedule.jitter, this.options.random);
      if (!waited && jitterMs > 0 && !(await this.wait(jitterMs))) return outcome({ skipped: 'stopping', jitterMs });
      const controller = new AbortController();
      this.current = { controller, switching: false };
      return this.record(await this.run(controller, jitterMs, outcome));
    } finally {
      this.current = null;
      this.running = false;
    }
  }

  private async run(
    controller: AbortController,
    jitterMs: number,
    outcome: (fields: Partial<CycleOutcome>) => CycleOutcome,
  ): Promise<CycleOutcome> {
    const { config, store, logger, ports } = this.options;
    const staged = await this.pendingStaged();
    const plan = planCycle({
      now: this.now(),
      window: config.schedule.window,
      autoApply: config.schedule.auto_apply,
      updatesLockPresent: await exists(path.resolve(this.options.home, config.schedule.updates_lock)),
      updatesLockPath: config.schedule.updates_lock,
      staged,
    });
    const rateLimit = rateLimitFor(plan.insideWindow, {
      download: config.download.rate_limit,
      outsideWindow: config.schedule.rate_limit_outside_window,
    });
    logger.info(
      {
        cycle: this.cycles,
        action: plan.action,
        reason: plan.reason,
        rateLimit: rateLimit ? `${formatBytes(rateLimit)}/s` : 'none',
        jitterMs,
      },
      'daemon: cycle starts',
    );

    if (plan.action === 'prestage' && staged && ports.offered) {
      const offered = await ports.offered(controller.signal).catch((error: unknown) => {
        // The full cycle below reports the failure (and may fall back to the staged release).
        logger.info({ err: error }, 'daemon: cannot ask the server what it offers');
        return undefined;
      });
      if (controller.signal.aborted) return outcome({ plan, rateLimit, jitterMs, aborted: true, skipped: 'stopping' });
      if (offered === staged) {
        this.setWaiting(plan, staged);
        this.failures = 0;
        return outcome({ plan, rateLimit, jitterMs, skipped: 'already_staged' });
      }
    }

    const result = await ports.upgrade({
      downloadOnly: plan.action === 'prestage',
      reason: plan.reason,
      rateLimit,
      signal: controller.signal,
      onEvent: (event) => this.forward(event),
    });
    const aborted = controller.signal.aborted;
    if (plan.action === 'upgrade' || result.status === 'up_to_date') store.kv.delete('daemon:waiting');
    else if (result.status === 'staged') this.setWaiting(plan, result.version);
    // A cycle we aborted ourselves says nothing about the server.
    if (!aborted) {
      this.failures = result.status === 'failed' && isServerFailure(result.error.code) ? this.failures + 1 : 0;
      this.skipLeft = cyclesToSkip(this.failures, this.options.maxSkip);
    }
    return outcome({ plan, result, rateLimit, jitterMs, aborted });
  }

  private forward(event: UpgradeEvent): void {
    if (event.type === 'step' && event.status === 'running' && isSwitchStep(event.step) && this.current)
      this.current.switching = true;
    this.options.onEvent?.(event);
  }

  /** False when the daemon was stopped during the wait. */
  private async wait(ms: number): Promise<boolean> {
    const sleep = this.options.sleep ?? ((time: number, signal: AbortSignal) => delay(time, undefined, { signal }));
    try {
      await sleep(ms, this.stopping.signal);
    } catch (error) {
      if (!this.stopped) throw error;
    }
    return !this.stopped;
  }

  /** The staged release not yet installed, if its files are still there. */
  private async pendingStaged(): Promise<string | null> {
    const { store, config } = this.options;
    const staged = readStaged(store);
    if (!staged?.version || staged.version === store.installedVersion(config.versions.docker_service)) return null;
    // No extraction (let go by an install that rolled back after its apply): pre-staging extracts it again.
    if (!staged.stagedRoot || !(await exists(staged.stagedRoot))) return null;
    return staged.version;
  }

  private setWaiting(plan: CycleAction, version: string): void {
    const waitingFor = plan.waitingFor ?? 'window';
    const previous = this.options.store.kv.get<WaitingRecord>('daemon:waiting');
    const what: Record<WaitingFor, string> = {
      window:
        `the maintenance window` +
        `${this.options.config.schedule.window ? ` ${formatWindow(this.options.config.schedule.window)}` : ''}`,
      auto_apply: 'a manual `nuwax upgrade` (schedule.auto_apply is false)',
      updates_lock: `the application to remove its update lock ${this.options.config.schedule.updates_lock}`,
    };
    const since =
      previous && previous.version === version && previous.waiting_for === waitingFor
        ? previous.since
        : this.now().toISOString();
    const record: WaitingRecord = {
      reason: `${version} is staged and waits for ${what[waitingFor]}`,
      since,
      version,
      waiting_for: waitingFor,
    };
    this.options.store.kv.set('daemon:waiting', record);
  }

  /** Every cycle leaves a line in the log and a trace in the store, skipped or not (SPEC 10). */
  private record(outcome: CycleOutcome): CycleOutcome {
    const { result } = outcome;
    const fields = {
      cycle: outcome.cycle,
      action: outcome.plan?.action ?? null,
      skipped: outcome.skipped,
      status: result?.status ?? null,
      code: result?.status === 'failed' ? result.error.code : null,
      aborted: outcome.aborted,
      ms: outcome.ms,
      failures: this.failures,
      skipNext: this.skipLeft,
    };
    this.options.store.kv.set('daemon:last_cycle', {
      ...fields,
      at: this.now().toISOString(),
      reason: outcome.plan?.reason ?? null,
    });
    if (result?.status === 'failed' && !outcome.aborted) this.options.logger.warn(fields, 'daemon: cycle failed');
    else this.options.logger.info(fields, 'daemon: cycle done');
    return outcome;
  }
}
