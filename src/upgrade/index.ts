export { type CheckOptions, type CheckResult, checkForUpdate, installedVersion } from './check.js';
export { diagnose, type Diagnosis } from './diagnosis.js';
export { pendingMigrations, runScript } from './migrations.js';
export { runUpgrade } from './orchestrator.js';
export type { StepInfo, UpgradeOptions, UpgradeStep } from './context.js';
export { listSteps } from './steps/index.js';
export type { UpgradePlan } from './plan.js';
export type {
  ApplyPlan,
  BackupPort,
  Collaborators,
  DownloaderPort,
  HealthFacts,
  PackagePort,
  PatchInfo,
  RuntimePort,
  ServiceHealthFacts,
} from './ports.js';
export { MAX_RECOVERY_ATTEMPTS, type RecoveryOptions, recoverUnfinished } from './recovery.js';
export { exitCodeFor, type StepTiming, type UpgradeResult } from './result.js';
export { type ManualRollbackOptions, rollbackToBackup } from './manual-rollback.js';
export { reportOutcome } from './report.js';
export { fallsBackToStaged, readStaged, type StagedRecord } from './staged.js';
