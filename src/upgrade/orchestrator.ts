import path from 'node:path';
import { assertConfigWritable, type Config, type HomePaths } from '../config/index.js';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import { type UpgradeListener, withOutcome } from '../events/index.js';
import type { FetchedManifest } from '../manifest/index.js';
import { fullPackageSize } from '../strategy/index.js';
import { decide } from './check.js';
import {
  composeTimeoutMs,
  type InstallDecision,
  prepareState,
  type StepContext,
  type UpgradeOptions,
} from './context.js';
import { failAfterChange, failedUnchanged, finishCommitted } from './outcome.js';
import { savePlan, type UpgradePlan } from './plan.js';
import { recoverUnfinished } from './recovery.js';
import { errorJson, type UpgradeResult } from './result.js';
import { rollBack } from './rollback.js';
import {
  alreadyStaged,
  dropUnusableExtraction,
  forgetWithdrawn,
  keepStaged,
  refreshStaged,
  sweepUnstaged,
} from './staged.js';
import {
  afterRestartSteps,
  asStepFailure,
  collectProblems,
  journaledListener,
  StepRunner,
  undoSteps,
} from './step-runner.js';
import { checkRelease } from './steps/checking.js';
import { listSteps, stepsOf } from './steps/index.js';

export type { UpgradeOptions } from './context.js';

/**
 * `nuwax upgrade` (SPEC 8): check, then the steps of src/upgrade/steps in three phases: prepare
 * (the old version runs), switch (rolled back on any failure), commit. Ends on the old version or
 * the new one.
 */
export async function runUpgrade(options: UpgradeOptions): Promise<UpgradeResult> {
  const { store, paths, logger } = options;
  let upgradeId: number | null = null;
  const emit = journaledListener(store, () => upgradeId, options.onEvent);
  const recovered = await recoverUnfinished({ ...options, onEvent: emit });
  if (recovered) logger.info({ recovered }, 'finished an interrupted upgrade first');
  await sweepUnstaged(store, paths, logger);
  let decision: { warnings: string[]; unusable: unknown[] } | undefined;
  const result = await upgrade(
    options,
    emit,
    (id) => {
      upgradeId = id;
    },
    (decided) => {
      decision = decided;
    },
  );
  withOutcome(result);
  if (decision && decision.warnings.length > 0) result.warnings = decision.warnings;
  if (decision && decision.unusable.length > 0) result.unusable = decision.unusable;
  if (upgradeId !== null && (result.warnings || result.unusable)) store.upgrades.amendResult(upgradeId, result);
  emit({ type: 'result', result });
  return result;
}

async function upgrade(
  options: UpgradeOptions,
  emit: UpgradeListener,
  recorded: (upgradeId: number) => void,
  decided: (decision: { warnings: string[]; unusable: unknown[] }) => void,
): Promise<UpgradeResult> {
  const { store, paths, logger } = options;
  const check = await runChecking(options, emit);
  if ('status' in check) return check;
  const { decision, fetched, current } = check;
  decided(decision);
  await forgetWithdrawn(store, paths, logger, fetched.manifest.version, !check.usedStaged && !options.fetched);
  if (decision.strategy === 'none')
    return { status: 'up_to_date', version: current, offered: decision.offered, reason: decision.reason };
  const previouslyStaged = options.downloadOnly ? await alreadyStaged(store, decision) : undefined;
  if (!options.downloadOnly) await dropUnusableExtraction(store, paths, logger, decision);
  if (previouslyStaged) {
    // Pre-staging what is staged already (a daemon cycle while the server is down) redoes nothing.
    refreshStaged(store, previouslyStaged, fetched);
    return {
      status: 'staged',
      version: previouslyStaged.version,
      strategy: previouslyStaged.strategy,
      package: previouslyStaged.package ?? '',
      upgrade_id: previouslyStaged.upgradeId,
      steps: [],
    };
  }
  const context = begin(options, emit, { ...check, decision });
  recorded(context.upgradeId);
  return runPhases(options, context);
}

/** `checking`, emitted by hand: it runs before the upgrade is recorded, so it has no journal row. */
async function runChecking(
  options: UpgradeOptions,
  emit: UpgradeListener,
): Promise<Awaited<ReturnType<typeof checkRelease>> | UpgradeResult> {
  const started = Date.now();
  emit({ type: 'step', step: 'checking', status: 'running' });
  try {
    const check = await checkRelease(options, emit);
    emit({ type: 'step', step: 'checking', status: 'done', ms: Date.now() - started });
    return check;
  } catch (error) {
    const failure = errorJson(toNuwaxError(error));
    emit({ type: 'step', step: 'checking', status: 'failed', ms: Date.now() - started, error: failure });
    return { status: 'failed', error: failure, step: 'checking', changed: false };
  }
}

/** Records the upgrade and its plan, announces the plan with the steps it goes through. */
function begin(
  options: UpgradeOptions,
  emit: UpgradeListener,
  check: { decision: InstallDecision; fetched: FetchedManifest; current: string | null },
): StepContext {
  const { store, config, paths } = options;
  const { decision, fetched, current } = check;
  const downloadOnly = options.downloadOnly ?? false;
  const upgradeId = store.upgrades.begin({
    fromVersion: current,
    toVersion: decision.offered,
    strategy: decision.strategy,
    trigger: options.trigger,
    startedBy: options.startedBy,
    reason: options.reason ?? (downloadOnly ? 'pre-stage' : 'upgrade'),
  });
  const plan = initialPlan(decision, current, config, paths, upgradeId, options.skipBackup ?? false);
  savePlan(store, upgradeId, plan);
  emit({
    type: 'plan',
    upgradeId,
    from: current,
    to: decision.offered,
    strategy: decision.strategy,
    size: decision.package.size,
    fullSize: fullPackageSize(fetched.manifest, decision.arch) ?? undefined,
    notes: fetched.manifest.release_notes ?? null,
    downloadOnly,
    steps: listSteps({ downloadOnly }),
  });
  const redecide = (forceFull: boolean) =>
    decide({
      config,
      paths,
      store,
      clientVersion: options.clientVersion,
      fetched,
      current,
      forceFull,
      allowDowngrade: options.allowDowngrade ?? false,
      ignoreRollout: options.ignoreRollout,
      hostArch: options.hostArch,
    });
  return {
    ...options,
    emit,
    plan,
    upgradeId,
    prepare: { decision, redecide, downloadOnly, fetched, offeredSha256: decision.package.sha256 },
  };
}

/** prepare; then staged (download-only), or confirm, switch (rolled back on failure) and commit. */
async function runPhases(options: UpgradeOptions, context: StepContext): Promise<UpgradeResult> {
  const { store, paths, logger, config } = options;
  const { plan, upgradeId } = context;
  const prepare = prepareState(context);
  const runner = new StepRunner(store, upgradeId, context.emit, logger, composeTimeoutMs(config), options.signal);
  try {
    await runner.runSteps(stepsOf('prepare'), context);
  } catch (error) {
    const failure = asStepFailure(error, 'staging');
    const { undoing, problems } = collectProblems(context, failure);
    await undoSteps(stepsOf('prepare'), runner.started, context, undoing);
    if (problems.length > 0) logger.warn({ problems }, 'undoing the preparation left problems');
    return failedUnchanged(context, upgradeId, failure, failure.step);
  }

  if (prepare.downloadOnly) {
    const offeredSha256 = prepare.offeredSha256;
    await keepStaged(store, paths, logger, { plan, fetched: prepare.fetched, upgradeId, offeredSha256 });
    const result: UpgradeResult = {
      status: 'staged',
      version: plan.to,
      strategy: plan.strategy,
      package: plan.packagePath ?? '',
      upgrade_id: upgradeId,
      steps: runner.timings,
    };
    store.upgrades.finish(upgradeId, 'staged', result);
    return result;
  }

  try {
    // The commit writes config.toml after the new version runs: refuse now if it could not.
    await assertConfigWritable(paths.configFile);
  } catch (error) {
    return failedUnchanged(context, upgradeId, toNuwaxError(error), 'stopping');
  }

  if (options.confirm && !(await options.confirm({ from: plan.from, to: plan.to, strategy: plan.strategy }))) {
    const cancelled = new NuwaxError(ErrorCodes.E_CANCELLED, 'Cancelled before the switch: nothing was changed');
    return failedUnchanged(context, upgradeId, cancelled, 'stopping');
  }

  try {
    await runner.runSteps(stepsOf('switch'), context);
  } catch (error) {
    const failure = asStepFailure(error, 'applying');
    if (!plan.servicesStopped && !plan.applyStarted) {
      // traffic.sh off or backup.sh failed while the old version still ran: nothing on the box changed (SPEC 8).
      const { undoing, problems } = collectProblems(context, failure);
      await undoSteps(stepsOf('switch'), runner.started, context, undoing);
      await afterRestartSteps(stepsOf('switch'), runner.started, context, undoing);
      if (problems.length > 0) logger.warn({ problems }, 'undoing the backup left problems');
      return failedUnchanged(context, upgradeId, failure, failure.step);
    }
    const outcome = await rollBack(context, runner, failure.step, runner.started, failure);
    return failAfterChange(context, failure, failure.step, outcome, context.health ?? null);
  }
  const downtimeMs = Date.now() - (plan.downtimeStartedAt ?? Date.now());
  return finishCommitted(context, runner, downtimeMs);
}

function initialPlan(
  decision: InstallDecision,
  current: string | null,
  config: Config,
  paths: HomePaths,
  upgradeId: number,
  skipBackup: boolean,
): UpgradePlan {
  const stagingDir = path.join(paths.stagingDir, `${decision.offered}-${upgradeId}`);
  return {
    from: current,
    to: decision.offered,
    strategy: decision.strategy,
    arch: decision.arch,
    packageUrl: decision.package.url,
    packageSha256: decision.package.sha256,
    packagePath: null,
    operations: decision.strategy === 'patch' ? decision.operations : null,
    protectedPaths: config.upgrade.protected,
    stagingDir,
    stagedRoot: null,
    undoDir: path.join(paths.cacheDir, 'undo', String(upgradeId)),
    backupId: null,
    skipBackup,
    servicesStopped: false,
    applyStarted: false,
    executedScripts: [],
    partial: null,
    downtimeStartedAt: null,
    fallbackReason: null,
  };
}
