/**
 * The one event stream of an upgrade (STYLE: progress is a typed event). Low-level modules emit
 * `ProgressEvent`s through an `onProgress` callback; the orchestrator wraps them into `UpgradeEvent`s
 * for the TUI, plain logs, --json and webhooks. This module imports nothing so that everyone may use it.
 */
/**
 * The steps of SPEC 8 as the journal names them, in order: what a reader of the stream can expect.
 * The upgrade's step table (src/upgrade/steps) is the authority; a step it adds needs nothing here
 * (the plan event lists the steps of a run, in order).
 */
export const STEPS = [
  'checking',
  'downloading',
  'verifying',
  'staging',
  'rebuilding_images',
  'loading_images',
  'traffic_off',
  'backing_up',
  'stopping',
  'applying',
  'migrating',
  'starting',
  'health_check',
  'traffic_on',
  'committing',
  'cleaning_up',
  'rolling_back',
] as const;

export type KnownStepName = (typeof STEPS)[number];
/** A step's name, as journaled: one of STEPS, or one that a newer step table added. */
export type StepName = KnownStepName | (string & {});

/**
 * From the backup on, the services are about to stop or stopped: a cancel or SIGTERM no longer
 * stops the upgrade, the switch ends or rolls back (SPEC 10, 11).
 */
export function isSwitchStep(step: StepName): boolean {
  return STEPS.indexOf(step as KnownStepName) >= STEPS.indexOf('traffic_off');
}

export interface ProgressEvent {
  type: 'progress';
  step: StepName;
  /** Units done so far (bytes, unless `unit` says otherwise). */
  done: number;
  /** Units in all, when known. */
  total: number | null;
  /** Units per second over a recent window. */
  rate: number;
  /** Seconds left, when it can be estimated. */
  eta: number | null;
  unit?: 'bytes' | 'files' | 'images';
  /** Optional second counter, e.g. files next to bytes for a backup. */
  files?: number;
}

export type ProgressListener = (event: ProgressEvent) => void;

/**
 * prepare: changes nothing on the box (the old version runs); switch: from the backup to a healthy
 * start, rolled back on failure; commit: records the new version, never rolled back.
 */
export type Phase = 'prepare' | 'switch' | 'commit';

/** A step of the upgrade's table, as data (the plan, --dry-run, the TUI's list). */
export interface StepInfo {
  name: StepName;
  phase: Phase;
  /** The services are down while it runs (all of it or part): what a downtime breakdown adds up. */
  downtime: boolean;
  /**
   * Past the point of no return: from the first such step on, a failure or an interruption is
   * rolled back (or committed, past health_check), no longer abandoned (SPEC 9: from `stopping`).
   */
  noReturn: boolean;
  /** One line for the plan (--dry-run) and the docs. */
  summary: string;
}

export interface PlanEvent {
  type: 'plan';
  upgradeId: number | null;
  from: string | null;
  to: string;
  strategy: 'full' | 'patch' | 'none';
  size: number | null;
  /** The full package's size for this arch, from the manifest: what a patch is measured against. */
  fullSize?: number;
  notes: string | null;
  downloadOnly: boolean;
  /** The steps this run goes through, in order, from the upgrade's table. */
  steps?: StepInfo[];
}

export interface StepEvent {
  type: 'step';
  step: StepName;
  status: 'running' | 'done' | 'failed' | 'skipped';
  /** Duration, on done/failed/skipped. */
  ms?: number;
  message?: string;
  error?: { code: string; message: string };
}

export interface LogEvent {
  type: 'log';
  level: 'info' | 'warn' | 'error';
  message: string;
  step?: StepName;
}

export interface ResultEvent {
  type: 'result';
  /** An UpgradeResult; read loosely, as results stored by older versions may lack fields. */
  result: Record<string, unknown> & { status: string };
}

export interface Diagnosis {
  cause: string;
  recommendations: string[];
}

export interface StepTiming {
  step: string;
  ms: number;
}

/** SPEC 8: what happened, told apart beyond `status` (which keeps SPEC's values for scripts). */
export type Outcome =
  | 'success'
  | 'partial_success'
  | 'up_to_date'
  | 'staged'
  | 'failed'
  | 'rolled_back'
  | 'failed_unrecovered'
  | 'cancelled';

/** The outcome of a result, from its status and, for a failure, whether and how the box changed. */
export function outcomeOf(result: { status: string } & Record<string, unknown>): Outcome {
  if (result.status !== 'failed') return result.status as Outcome;
  if ('changed' in result) {
    const code = (result.error as { code?: string } | undefined)?.code;
    return code === 'E_CANCELLED' || code === 'E_ABORTED' ? 'cancelled' : 'failed';
  }
  return result.recovered === true ? 'rolled_back' : 'failed_unrecovered';
}

/** The result with its `outcome` set (every result carries one, SPEC 8). */
export function withOutcome<T extends { status: string }>(result: T): T & { outcome: Outcome } {
  const outcome = outcomeOf(result as T & Record<string, unknown>);
  return Object.assign(result, { outcome });
}

/**
 * How history, status and webhooks name a finished upgrade: the outcome (stored results of older
 * versions lack it: derived), and for a failure the step that failed, not the last one journaled.
 */
export function outcomeText(status: string, result: unknown): string {
  if (!result || typeof result !== 'object' || !('status' in result)) return status;
  const stored = result as Record<string, unknown> & { status: string };
  const outcome = typeof stored.outcome === 'string' ? stored.outcome : outcomeOf(stored);
  return stored.status === 'failed' && typeof stored.step === 'string' ? `${outcome} at ${stored.step}` : outcome;
}

/** What every result carries besides its status-specific fields. */
type ResultCommon = {
  outcome?: Outcome;
  /** What the run did with docker/traffic.sh, once it reached it. */
  traffic?: TrafficRecord;
  /** The strategy decision's warnings (e.g. an unverified package installed under allow_unverified). */
  warnings?: string[];
  /** Packages of the manifest the decision could not use, and why. */
  unusable?: unknown[];
};

/** SPEC 8 results, as printed with --json, stored in SQLite and carried by the last event. */
/** One call of docker/traffic.sh (`off` before the services stop, `on` once they are healthy again). */
export interface TrafficCall {
  success: boolean;
  ms: number;
  error?: { code: string; message: string };
}

/** What the upgrade did with traffic.sh; null for a call that did not happen. */
export interface TrafficRecord {
  off: TrafficCall | null;
  on: TrafficCall | null;
}

export type UpgradeResult = ResultCommon &
  (
    | {
        status: 'success';
        from: string | null;
        version: string;
        strategy: string;
        executed_scripts: string[];
        backup_id: number | null;
        downtime_ms: number;
        steps: StepTiming[];
        fallback_reason?: string;
        upgrade_id: number;
      }
    | { status: 'up_to_date'; version: string | null; offered: string; reason: string }
    | { status: 'staged'; version: string; strategy: string; package: string; upgrade_id: number; steps: StepTiming[] }
    | {
        status: 'partial_success';
        from: string | null;
        version: string;
        strategy: string;
        healthy_services: string[];
        unhealthy_services: string[];
        severity: 'non-critical';
        recommendation: string;
        backup_id: number | null;
        downtime_ms: number;
        steps: StepTiming[];
        upgrade_id: number;
      }
    | { status: 'failed'; error: { code: string; message: string }; step: string; changed: false; upgrade_id?: number }
    | {
        status: 'failed';
        error: { code: string; message: string };
        step: string;
        recovered: boolean;
        previous_version: string | null;
        backup_id: number | null;
        diagnosis: Diagnosis;
        bundle?: string;
        manual_steps?: string[];
        upgrade_id: number;
      }
  );

export type UpgradeEvent = PlanEvent | StepEvent | ProgressEvent | LogEvent | ResultEvent;
export type UpgradeListener = (event: UpgradeEvent) => void;

/**
 * Throttles progress at the source (at most `perSecond` events, plus the last one) and computes a
 * rate over a sliding window and an ETA.
 */
export function createProgressReporter(
  step: StepName,
  total: number | null,
  listener: ProgressListener | undefined,
  options: { perSecond?: number; windowMs?: number; unit?: ProgressEvent['unit']; now?: () => number } = {},
): { update(done: number, extra?: { files?: number }): void; finish(done: number, extra?: { files?: number }): void } {
  const now = options.now ?? Date.now;
  const interval = 1000 / (options.perSecond ?? 4);
  const windowMs = options.windowMs ?? 3000;
  const samples: Array<[number, number]> = [];
  let lastEmit = 0;
  const emit = (done: number, extra?: { files?: number }): void => {
    if (!listener) return;
    const time = now();
    samples.push([time, done]);
    while (samples.length > 2 && time - samples[0]![0] > windowMs) samples.shift();
    const [firstTime, firstDone] = samples[0]!;
    const elapsed = (time - firstTime) / 1000;
    const rate = elapsed > 0 ? Math.max(0, (done - firstDone) / elapsed) : 0;
    const eta = total !== null && rate > 0 ? Math.max(0, (total - done) / rate) : null;
    const event: ProgressEvent = { type: 'progress', step, done, total, rate, eta };
    if (options.unit) event.unit = options.unit;
    if (extra?.files !== undefined) event.files = extra.files;
    listener(event);
  };
  return {
    update(done, extra) {
      const time = now();
      if (time - lastEmit < interval) {
        samples.push([time, done]);
        if (samples.length > 64) samples.splice(1, samples.length - 64);
        return;
      }
      lastEmit = time;
      emit(done, extra);
    },
    finish(done, extra) {
      emit(done, extra);
    },
  };
}
