import type { Dispatcher } from 'undici';
import type { Config, HomePaths } from '../config/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import type { Phase, StepInfo, StepName, UpgradeListener } from '../events/index.js';

export type { Phase, StepInfo };
import type { Logger } from '../log/index.js';
import type { FetchedManifest } from '../manifest/index.js';
import type { Store } from '../state/index.js';
import type { StrategyDecision } from '../strategy/index.js';
import type { UpgradePlan } from './plan.js';
import type { Collaborators, HealthFacts, PatchInfo } from './ports.js';

/** The types every part of an upgrade shares, so that no module imports the orchestrator back. */
export interface UpgradeOptions {
  config: Config;
  paths: HomePaths;
  store: Store;
  collaborators: Collaborators;
  clientVersion: string;
  logger: Logger;
  hostArch?: string;
  trigger: 'manual' | 'schedule' | 'recovery';
  startedBy: string;
  reason?: string;
  downloadOnly?: boolean;
  forceFull?: boolean;
  skipBackup?: boolean;
  allowDowngrade?: boolean;
  ignoreRollout?: boolean;
  signal?: AbortSignal;
  onEvent?: UpgradeListener;
  /** Asked before the switch (stopping services); false cancels with nothing changed. */
  confirm?: (summary: { from: string | null; to: string; strategy: string }) => Promise<boolean>;
  /** A manifest in hand (staged release, offline bundle) instead of a fetch. */
  fetched?: FetchedManifest;
  dispatcher?: Dispatcher;
}

/** A decision that installs something. */
export type InstallDecision = Exclude<StrategyDecision, { strategy: 'none' }>;

/** What the prepare phase carries from one step to the next; absent in a recovery. */
export interface PrepareState {
  decision: InstallDecision;
  /** The same manifest decided again, for the full package when a patch's base does not match. */
  redecide(forceFull: boolean): StrategyDecision;
  downloadOnly: boolean;
  /** The manifest decided on, and the hash of the package it offered (a patch may give way to the full one). */
  fetched: FetchedManifest;
  offeredSha256: string | null;
  download?: { path: string; reused: boolean };
  staged?: { root: string; patchInfo: PatchInfo | null };
}

/** What every step works with, in a live upgrade and in the recovery of an interrupted one. */
export interface StepContext {
  store: Store;
  config: Config;
  paths: HomePaths;
  collaborators: Collaborators;
  logger: Logger;
  emit: UpgradeListener;
  /** Persisted after each change (savePlan): a recovery in a new process reads it. */
  plan: UpgradePlan;
  upgradeId: number;
  prepare?: PrepareState;
  /** The last health seen, for the diagnosis. */
  health?: HealthFacts | null;
}

/** What a step's run may ask of the loop: go back to an earlier step (a patch replaced by the full package). */
export type StepOutcome = undefined | { again: StepName };

/** One upgrade step (src/upgrade/steps/): data for the loop, the journal, recovery, the TUI and the docs. */
export interface UpgradeStep extends StepInfo {
  /** A reason to skip this run (journaled as skipped), or undefined to run it. */
  skip?(context: StepContext): string | undefined;
  /** Its own time limit, when not `[upgrade] phase_timeout`. */
  timeoutMs?(config: Config): number;
  /** A failure is logged and the upgrade goes on (after the commit, nothing may fail it). */
  mayFail?: boolean;
  /** Runs once the old version is up and healthy again after a rollback, for a step that began (newest first). */
  afterRestart?(context: StepContext, undoing: Undoing): Promise<void>;
  run(context: StepContext, signal: AbortSignal): Promise<StepOutcome | undefined>;
  /**
   * Reverses what `run` changed, guarded by the plan (it also runs for the step that failed half
   * way, and in a recovery that cannot know how far the step got). Walked newest first on failure.
   */
  undo?(context: StepContext, undoing: Undoing): Promise<void>;
}

/** What an undo gets: the failure being undone, and a way to run parts that must all be tried. */
export interface Undoing {
  failure: NuwaxError;
  /** Runs one part; a failure becomes a problem (`what: code: message`) and the next part runs. */
  attempt(what: string, work: () => Promise<void>): Promise<void>;
  /** A problem that is no error: something the rollback cannot guarantee. */
  problem(text: string): void;
}

/** The part of the prepare state a step needs; a step of the prepare phase never runs in a recovery. */
export function prepareState(context: StepContext): PrepareState {
  if (!context.prepare) throw new NuwaxError(ErrorCodes.E_INTERNAL, 'a prepare step ran without its prepare state');
  return context.prepare;
}

export function composeTimeoutMs(config: Config): number {
  return config.upgrade.phase_timeout * 1000;
}

export function healthOptions(config: Config, signal?: AbortSignal) {
  return {
    critical: config.health.critical,
    timeoutMs: config.health.timeout * 1000,
    settleMs: config.health.settle * 1000,
    http: config.health.http,
    signal,
  };
}
