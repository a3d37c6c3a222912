import path from 'node:path';
import type { Config, HomePaths } from '../config/index.js';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import { decide } from './check.js';
import type { InstallDecision, StepContext, UpgradeOptions } from './context.js';
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
import { asStepFailure, collectProblems, journaledListener, StepRunner, undoSteps } from './step-runner.js';
import { checkRelease } from './steps/checking.js';
import { listSteps, stepsOf } from './steps/index.js';

export type { UpgradeOptions } from './context.js';

/**
 * `nuwax upgrade` (SPEC 8): check, then the steps of src/upgrade/steps in three phases: prepare
 * (the old version runs), switch (rolled back on any failure), commit. Ends on the old version or
 * the new one.
 */
export async function runUpgrade(options: UpgradeOptions): Promise<UpgradeResult> {
  const { store, config, paths, logger } = options;
  let upgradeId: number | null = null;
  const emit = journaledListener(store, () => upgradeId, options.onEvent);
  const finish = (result: UpgradeResult) => {
    emit({ type: 'result', result });
    return result;
  };

  const recovered = await recoverUnfinished({ ...options, onEvent: emit });
  if (recovered) logger.info({ recovered }, 'finished an interrupted upgrade first');
  await sweepUnstaged(store, paths, logger);

  const checkStarted = Date.now();
  emit({ type: 'step', step: 'checking', status: 'running' });
  let check: Awaited<ReturnType<typeof checkRelease>>;
  try {
    check = await checkRelease(options, emit);
  } catch (error) {
    const failure = errorJson(toNuwaxError(error));
    emit({ type: 'step', step: 'checking', status: 'failed', ms: Date.now() - checkStarted, error: failure });
    return finish({ status: 'failed', error: failure, step: 'checking', changed: false });
  }
  emit({ type: 'step', step: 'checking', status: 'done', ms: Date.now() - checkStarted });
  const { decision, fetched, current } = check;
  const fromServer = !check.usedStaged && !options.fetched;
  await forgetWithdrawn(store, paths, logger, fetched.manifest.version, fromServer);
  if (decision.strategy === 'none') {
    return finish({ status: 'up_to_date', version: current, offered: decision.offered, reason: decision.reason });
  }

  const previouslyStaged = options.downloadOnly ? await alreadyStaged(store, decision) : undefined;
  if (!options.downloadOnly) await dropUnusableExtraction(store, paths, logger, decision);
  if (previouslyStaged) {
    // Pre-staging what is staged already (a daemon cycle while the server is down) redoes nothing.
    refreshStaged(store, previouslyStaged, fetched);
    return finish({
      status: 'staged',
      version: previouslyStaged.version,
      strategy: previouslyStaged.strategy,
      package: previouslyStaged.package ?? '',
      upgrade_id: previouslyStaged.upgradeId,
      steps: [],
    });
  }

  const id = store.upgrades.begin({
    fromVersion: current,
    toVersion: decision.offered,
    strategy: decision.strategy,
    trigger: options.trigger,
    startedBy: options.startedBy,
    reason: options.reason ?? (options.downloadOnly ? 'pre-stage' : 'upgrade'),
  });
  upgradeId = id;
  const plan = initialPlan(decision, current, config, paths, id, options.skipBackup ?? false);
  savePlan(store, id, plan);
  const downloadOnly = options.downloadOnly ?? false;
  emit({
    type: 'plan',
    upgradeId: id,
    from: current,
    to: decision.offered,
    strategy: decision.strategy,
    size: decision.package.size,
    notes: fetched.manifest.release_notes ?? null,
    downloadOnly,
    steps: listSteps({ downloadOnly }),
  });

  const runner = new StepRunner(store, id, emit, logger, config.upgrade.phase_timeout * 1000, options.signal);
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
      hostArch: options.hostArch,
    });
  const context: StepContext = {
    ...options,
    emit,
    plan,
    upgradeId: id,
    prepare: { decision, redecide, downloadOnly },
  };

  try {
    await runner.runSteps(stepsOf('prepare'), context);
  } catch (error) {
    const failure = asStepFailure(error, 'staging');
    const { undoing, problems } = collectProblems(context, failure);
    await undoSteps(stepsOf('prepare'), runner.started, context, undoing);
    if (problems.length > 0) logger.warn({ problems }, 'undoing the preparation left problems');
    return finish(failedUnchanged(context, id, failure, failure.step));
  }

  if (downloadOnly) {
    await keepStaged(store, paths, logger, { plan, fetched, upgradeId: id, offeredSha256: decision.package.sha256 });
    const result: UpgradeResult = {
      status: 'staged',
      version: plan.to,
      strategy: plan.strategy,
      package: plan.packagePath ?? '',
      upgrade_id: id,
      steps: runner.timings,
    };
    store.upgrades.finish(id, 'staged', result);
    return finish(result);
  }

  if (options.confirm && !(await options.confirm({ from: plan.from, to: plan.to, strategy: plan.strategy }))) {
    const cancelled = new NuwaxError(ErrorCodes.E_CANCELLED, 'Cancelled before the switch: nothing was changed');
    return finish(failedUnchanged(context, id, cancelled, 'stopping'));
  }

  try {
    await runner.runSteps(stepsOf('switch'), context);
  } catch (error) {
    const failure = asStepFailure(error, 'applying');
    const outcome = await rollBack(context, runner, failure.step, runner.started, failure);
    return finish(await failAfterChange(context, failure, failure.step, outcome, context.health ?? null));
  }
  const downtimeMs = Date.now() - (plan.downtimeStartedAt ?? Date.now());
  return finish(await finishCommitted(context, runner, downtimeMs));
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
