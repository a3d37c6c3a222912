import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import type { StepName, StepTiming, UpgradeEvent, UpgradeListener } from '../events/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../state/index.js';
import type { StepContext, Undoing, UpgradeStep } from './context.js';

/** A failure annotated with the step it happened in; its code and details are the original's. */
export class StepFailure extends NuwaxError {
  constructor(
    readonly step: StepName,
    original: NuwaxError,
  ) {
    super(original.code, original.message, { cause: original, details: original.details });
    this.name = 'StepFailure';
  }
}

/** Any error, as a failure of `step` (a StepFailure keeps the step it already names). */
export function asStepFailure(error: unknown, step: StepName): StepFailure {
  return error instanceof StepFailure ? error : new StepFailure(step, toNuwaxError(error));
}

/**
 * Journals before each step (SPEC 9), emits step events, records timings. The one place where a
 * step starts and ends, so the journal, the events and the result never disagree.
 */
export class StepRunner {
  readonly timings: StepTiming[] = [];
  /** Steps begun or skipped in this process, in order (a repeated step once). */
  readonly started: StepName[] = [];

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
    this.begin(step);
    this.emit({ type: 'step', step, status: 'running' });
    const started = Date.now();
    const timeoutMs = options.timeoutMs ?? this.phaseTimeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
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
        const seconds = Math.round(timeoutMs / 1000);
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
    this.begin(step);
    this.store.upgrades.finishStep(journalId, 'skipped', { message });
    this.emit({ type: 'step', step, status: 'skipped', ms: 0, message });
  }

  /**
   * Runs the steps in table order, each journaled before it runs; a step may send the loop back
   * to an earlier one. Throws the StepFailure of the step that failed; undoing is the caller's.
   */
  async runSteps(steps: readonly UpgradeStep[], context: StepContext): Promise<void> {
    let index = 0;
    while (index < steps.length) {
      const step = steps[index]!;
      const skipped = step.skip?.(context);
      if (skipped !== undefined) {
        this.skip(step.name, skipped);
        index += 1;
        continue;
      }
      const timeoutMs = step.timeoutMs?.(context.config);
      const run = this.run(step.name, (signal) => step.run(context, signal), { timeoutMs });
      // A step that may fail is journaled and reported as failed by run(); the upgrade goes on.
      const outcome = step.mayFail ? await run.catch(() => undefined) : await run;
      index = outcome ? steps.findIndex((item) => item.name === outcome.again) : index + 1;
    }
  }

  private begin(step: StepName): void {
    if (!this.started.includes(step)) this.started.push(step);
  }
}

/** An Undoing that collects the problems of the parts it runs (each part runs whatever came before). */
export function collectProblems(context: StepContext, failure: NuwaxError): { undoing: Undoing; problems: string[] } {
  const problems: string[] = [];
  const undoing: Undoing = {
    failure,
    problem: (text) => problems.push(text),
    async attempt(what, work) {
      try {
        await work();
      } catch (error) {
        const nuwaxError = toNuwaxError(error);
        problems.push(`${what}: ${nuwaxError.code}: ${nuwaxError.message}`);
        context.logger.error({ err: nuwaxError, what }, 'rollback part failed');
      }
    },
  };
  return { undoing, problems };
}

/** Walks the `undo` of the steps that began, newest first (the one that failed included). */
export async function undoSteps(
  steps: readonly UpgradeStep[],
  began: readonly StepName[],
  context: StepContext,
  undoing: Undoing,
): Promise<void> {
  for (const step of [...steps].reverse()) {
    const undo = step.undo;
    if (undo && began.includes(step.name)) await undoing.attempt(`undo ${step.name}`, () => undo(context, undoing));
  }
}

/** Once the old version runs again: the `afterRestart` of each step that began, newest first (traffic on). */
export async function afterRestartSteps(
  steps: readonly UpgradeStep[],
  began: readonly StepName[],
  context: StepContext,
  undoing: Undoing,
): Promise<void> {
  for (const step of [...steps].reverse())
    if (step.afterRestart && began.includes(step.name)) await step.afterRestart(context, undoing);
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
