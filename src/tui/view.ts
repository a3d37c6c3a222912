/**
 * The TUI's state: a pure reducer from upgrade events to what the screen shows, and a tiny store
 * that React reads with `useSyncExternalStore`. No React and no ink here, so it is tested alone.
 */
import {
  isSwitchStep,
  type LogEvent,
  type PlanEvent,
  type ProgressEvent,
  STEPS,
  type StepName,
  type UpgradeEvent,
  type UpgradeListener,
} from '../events/index.js';
import type { UpgradeResult } from '../events/index.js';
import { asUpgradeResult } from './summary.js';

export type StepStatus = 'pending' | 'running' | 'done' | 'failed' | 'skipped';

export interface StepRow {
  step: StepName;
  status: StepStatus;
  ms?: number;
  /** When the step started, on this machine's clock (for the live elapsed time). */
  startedAt?: number;
  message?: string;
  error?: { code: string; message: string };
}

export interface ConfirmSummary {
  from: string | null;
  to: string;
  strategy: string;
}

export interface ViewState {
  plan: PlanEvent | null;
  steps: StepRow[];
  /** The last progress of the running step; cleared when that step ends. */
  progress: ProgressEvent | null;
  logs: LogEvent[];
  confirm: ConfirmSummary | null;
  /** The answer given at the prompt, shown once it is gone. */
  answered: { summary: ConfirmSummary; yes: boolean } | null;
  cancelling: boolean;
  /** True when Ctrl-C came while the switch was running: it finishes or rolls back (SPEC 10). */
  cancelDuringSwitch: boolean;
  result: UpgradeResult | null;
  /** The order rows are shown in: the plan's steps once it came, SPEC 8's before; `rolling_back` last. */
  order: readonly StepName[];
}

export const LOG_LINES = 5;

export function initialView(): ViewState {
  return {
    plan: null,
    steps: [],
    progress: null,
    logs: [],
    confirm: null,
    answered: null,
    cancelling: false,
    cancelDuringSwitch: false,
    result: null,
    order: STEPS,
  };
}

export function isSwitching(state: ViewState): boolean {
  return state.steps.some((row) => row.status === 'running' && isSwitchStep(row.step));
}

/** Keeps rows in the plan's order whatever order they arrive in; a step it does not list goes last. */
function upsertStep(rows: StepRow[], row: StepRow, order: readonly StepName[]): StepRow[] {
  const others = rows.filter((item) => item.step !== row.step);
  const rank = (step: StepName) => {
    const index = order.indexOf(step);
    return index === -1 ? order.length : index;
  };
  return [...others, row].sort((a, b) => rank(a.step) - rank(b.step));
}

/** The steps this run goes through: the upgrade's table as the plan carries it, else every known step. */
function expectedSteps(plan: PlanEvent): StepName[] {
  if (plan.steps) return plan.steps.map((step) => step.name);
  return STEPS.filter((step) => step !== 'rolling_back' && (!plan.downloadOnly || !isSwitchStep(step)));
}

function reduceStep(state: ViewState, event: Extract<UpgradeEvent, { type: 'step' }>, now: number): ViewState {
  // `checking` opens a new run: rows left by the recovery of an interrupted upgrade (SPEC 9) go.
  const base = event.step === 'checking' && event.status === 'running' ? [] : state.steps;
  const row: StepRow = { step: event.step, status: event.status };
  if (event.status === 'running') row.startedAt = now;
  if (event.ms !== undefined) row.ms = event.ms;
  if (event.message !== undefined) row.message = event.message;
  if (event.error !== undefined) row.error = event.error;
  const progress = state.progress?.step === event.step && event.status !== 'running' ? null : state.progress;
  const steps = upsertStep(base, row, state.order);
  return { ...state, steps, progress: event.status === 'running' ? null : progress };
}

function reducePlan(state: ViewState, plan: PlanEvent): ViewState {
  const expected = expectedSteps(plan);
  const order = [...expected, 'rolling_back'];
  let steps = state.steps;
  for (const step of expected) {
    if (!steps.some((row) => row.step === step)) steps = upsertStep(steps, { step, status: 'pending' }, order);
  }
  return { ...state, plan, steps, order };
}

export function reduceView(state: ViewState, event: UpgradeEvent, now: number): ViewState {
  switch (event.type) {
    case 'plan':
      return reducePlan(state, event);
    case 'step':
      return reduceStep(state, event, now);
    case 'progress':
      return { ...state, progress: event };
    case 'log':
      return { ...state, logs: [...state.logs, event].slice(-LOG_LINES) };
    case 'result':
      // Steps never reached stay listed as pending no longer: they will not run.
      return {
        ...state,
        steps: state.steps.filter((row) => row.status !== 'pending'),
        progress: null,
        confirm: null,
        result: asUpgradeResult(event.result),
      };
  }
}

export interface ViewStore {
  getState(): ViewState;
  subscribe(onChange: () => void): () => void;
  /** Pass as `onEvent` to runUpgrade. */
  listener: UpgradeListener;
  /** Shows the prompt; resolves with the answer (false on Ctrl-C). Pass as `confirm` to runUpgrade. */
  confirm(summary: ConfirmSummary): Promise<boolean>;
  answer(yes: boolean): void;
  /** Ctrl-C: shows "Cancelling safely…" and calls `onCancel` once. */
  cancel(): void;
}

export function createViewStore(options: { onCancel(): void; ask?: boolean; now?: () => number }): ViewStore {
  const now = options.now ?? Date.now;
  let state = initialView();
  let pending: ((yes: boolean) => void) | null = null;
  const listeners = new Set<() => void>();
  const update = (next: ViewState) => {
    state = next;
    for (const listener of listeners) listener();
  };
  const store: ViewStore = {
    getState: () => state,
    subscribe(onChange) {
      listeners.add(onChange);
      return () => listeners.delete(onChange);
    },
    listener: (event) => update(reduceView(state, event, now())),
    confirm(summary) {
      if (options.ask === false) return Promise.resolve(true);
      if (state.cancelling) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        pending = resolve;
        update({ ...state, confirm: summary });
      });
    },
    answer(yes) {
      if (!state.confirm) return;
      const resolve = pending;
      pending = null;
      update({ ...state, answered: { summary: state.confirm, yes }, confirm: null });
      resolve?.(yes);
    },
    cancel() {
      if (state.cancelling || state.result) return;
      update({ ...state, cancelling: true, cancelDuringSwitch: isSwitching(state) });
      if (state.confirm) store.answer(false);
      options.onCancel();
    },
  };
  return store;
}
