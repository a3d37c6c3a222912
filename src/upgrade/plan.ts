import type { ApplyPlan } from '../apply/index.js';
import type { TrafficRecord } from '../events/index.js';
import type { PatchOperations } from '../manifest/index.js';
import type { Store } from '../state/index.js';

/**
 * Everything a recovery in a new process needs to finish or reverse an upgrade (SPEC 9), persisted
 * in `upgrades.plan` and updated as the upgrade moves.
 */
export interface UpgradePlan {
  from: string | null;
  to: string;
  strategy: 'full' | 'patch';
  arch: 'x86_64' | 'aarch64';
  packageUrl: string;
  packageSha256: string | null;
  packagePath: string | null;
  operations: PatchOperations | null;
  protectedPaths: string[];
  stagingDir: string;
  stagedRoot: string | null;
  undoDir: string;
  backupId: number | null;
  skipBackup: boolean;
  servicesStopped: boolean;
  applyStarted: boolean;
  /** Up scripts whose down script the rollback ran (absent in plans of older versions). */
  reversedScripts?: string[];
  /** The rollback restored nuwax's own backup, but docker/restore.sh failed: its file and output. */
  restoreHookFailure?: { file: string | null; message: string; output: string } | null;
  executedScripts: string[];
  partial: { healthy: string[]; unhealthy: string[] } | null;
  downtimeStartedAt: number | null;
  /**
   * How the switch stops the old version, decided before it (loading_images): `stop` keeps the
   * containers for `up` to restart; absent (plans of older versions, no decision) means `down`.
   */
  stopWith?: 'stop' | 'down';
  /** How long the stop took, for the downtime breakdown (absent in plans of older versions). */
  stopMs?: number | null;
  fallbackReason: string | null;
  /** traffic.sh's calls; absent until `traffic_off` ran (and in plans of older versions). */
  traffic?: TrafficRecord;
}

export function savePlan(store: Store, upgradeId: number, plan: UpgradePlan): void {
  store.upgrades.update(upgradeId, { plan });
}

/** What src/apply needs of the plan. */
export function applyPlanOf(plan: UpgradePlan): ApplyPlan {
  return { kind: plan.strategy, operations: plan.operations ?? undefined, protectedPaths: plan.protectedPaths };
}
