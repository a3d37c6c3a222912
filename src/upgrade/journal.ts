import type { StepName, UpgradeEvent, UpgradeListener } from '../events/index.js';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../state/index.js';
import type { StepTiming } from './result.js';

/** A failure annotated with the step it happened in. */
export class StepFailure extends Error {
  constructor(
    readonly step: StepName,
    readonly error: ReturnType<typeof toNuwaxError>,
  ) {
    super(error.message, { cause: error });
  }
}

/**
 * Journals before each step (SPEC 9), emits step events, records timings. The one place where a
 * step starts and ends, so the journal, the events and the result never disagree.
 */
export class StepRunner {
  readonly timings: StepTiming[] = [];

  constructor(
    private readonly store: Store,
    readonly upgradeId: number,
    private readonly emit: UpgradeListener,
    private readonly logger: Logger,
    private readonly phaseTimeoutMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  async run<T>(
    step: StepName,
    work: (signal: AbortSignal) => Promise<T>,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    const journalId = this.store.upgrades.startStep(this.upgradeId, step);
    this.emit({ type: 'step', step, status: 'running' });
    const started = Date.now();
    const timeout = AbortSignal.timeout(options.timeoutMs ?? this.phaseTimeoutMs);
    const signal = this.signal ? AbortSignal.any([this.signal, timeout]) : timeout;
    try {
      const value = await work(signal);
      const ms = Date.now() - started;
      this.store.upgrades.finishStep(journalId, 'done', { ms });
      this.timings.push({ step, ms });
      this.emit({ type: 'step', step, status: 'done', ms });
      return value;
    } catch (caught) {
      const ms = Date.now() - started;
      let error = toNuwaxError(caught);
      if (timeout.aborted && !this.signal?.aborted) {
        const seconds = Math.round((options.timeoutMs ?? this.phaseTimeoutMs) / 1000);
        error = new NuwaxError(ErrorCodes.E_TIMEOUT, `The ${step} step did not finish within ${seconds} s`, {
          cause: caught,
        });
      }
      this.store.upgrades.finishStep(journalId, 'failed', { ms, error: error.toJSON() });
      this.timings.push({ step, ms });
      this.emit({ type: 'step', step, status: 'failed', ms, error: { code: error.code, message: error.message } });
      // Rendered as a step event already; the log keeps the cause chain for --log-level info/debug.
      this.logger.info({ step, code: error.code, err: error }, 'upgrade step failed');
      throw new StepFailure(step, error);
    }
  }

  skip(step: StepName, message: string): void {
    const journalId = this.store.upgrades.startStep(this.upgradeId, step);
    this.store.upgrades.finishStep(journalId, 'skipped', { message });
    this.emit({ type: 'step', step, status: 'skipped', ms: 0, message });
  }
}

/** Records every non-progress event in SQLite and forwards everything to the listener. */
export function journaledListener(
  store: Store,
  upgradeId: () => number | null,
  listener: UpgradeListener | undefined,
): UpgradeListener {
  return (event: UpgradeEvent) => {
    if (event.type !== 'progress') store.upgrades.recordEvent(upgradeId(), event.type, event);
    listener?.(event);
  };
}
