import path from 'node:path';
import type { Config, HomePaths } from '../config/index.js';
import type { UpgradeListener } from '../events/index.js';
import { ErrorCodes, toNuwaxError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { FetchedManifest } from '../manifest/index.js';
import type { Store } from '../state/index.js';
import type { StrategyDecision } from '../strategy/index.js';
import { checkForUpdate, decide } from './check.js';
import { StepFailure, StepRunner, journaledListener } from './journal.js';
import { type UpgradePlan, savePlan } from './plan.js';
import type { Collaborators } from './ports.js';
import { recoverUnfinished } from './recovery.js';
import { errorJson, type UpgradeResult } from './result.js';
import { prepareRelease } from './prepare.js';
import {
  alreadyStaged,
  detachExtraction,
  fallsBackToStaged,
  forgetStaged,
  readStaged,
  recordStaged,
  refreshStaged,
  stagedFallback,
  sweepStaging,
} from './staged.js';
import { switchRelease } from './switch-run.js';

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
  dispatcher?: import('undici').Dispatcher;
}

/**
 * `nuwax upgrade` (SPEC 8): prepare (download, verify, stage, load images) while the old version
 * runs, then switch (backup, stop, apply, migrate, start, health, commit) with a rollback on any
 * failure. Ends on the old version or the new one.
 */
export async function runUpgrade(options: UpgradeOptions): Promise<UpgradeResult> {
  const { store, config, paths, logger } = options;
  let upgradeId: number | null = null;
  const emit = journaledListener(store, () => upgradeId, options.onEvent);

  const recovered = await recoverUnfinished({ ...options, onEvent: emit });
  if (recovered) logger.info({ recovered }, 'finished an interrupted upgrade first');
  await sweepStaging(paths.stagingDir, readStaged(store)?.stagedRoot ?? null, logger);

  let decision: StrategyDecision;
  let fetched: FetchedManifest;
  let current: string | null;
  let usedStaged = false;
  const checkStarted = Date.now();
  emit({ type: 'step', step: 'checking', status: 'running' });
  try {
    const staged = options.fetched;
    const check = await checkForUpdate({
      config,
      paths,
      store,
      clientVersion: options.clientVersion,
      ...(options.hostArch ? { hostArch: options.hostArch } : {}),
      forceFull: options.forceFull ?? false,
      allowDowngrade: options.allowDowngrade ?? false,
      ignoreRollout: options.ignoreRollout,
      ...(options.signal ? { signal: options.signal } : {}),
      logger,
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      ...(staged ? { fetched: staged } : {}),
    }).catch(async (error: unknown) => {
      // Offline: a release staged earlier (download-only, daemon, or an imported bundle on an
      // air-gapped box with no server configured at all) can still be installed (issue 7).
      const original = toNuwaxError(error);
      if (options.fetched || !fallsBackToStaged(original.code, config)) throw error;
      const fallback = stagedFallback(store, config, original);
      if (!fallback) throw error;
      usedStaged = true;
      logger.warn({ err: error }, `cannot use the release server (${original.code}); using the staged release`);
      emit({
        type: 'log',
        level: 'warn',
        step: 'checking',
        message: `The release server cannot be used (${original.message}); installing the staged release`,
      });
      // What the server's offer allowed (--allow-downgrade) is not carried over to the staged release.
      return checkForUpdate({
        config,
        paths,
        store,
        clientVersion: options.clientVersion,
        fetched: fallback,
        forceFull: options.forceFull ?? false,
        allowDowngrade: false,
        ignoreRollout: options.ignoreRollout,
        ...(options.hostArch ? { hostArch: options.hostArch } : {}),
      });
    });
    ({ decision, fetched, current } = check);
  } catch (error) {
    const nuwaxError = toNuwaxError(error);
    emit({
      type: 'step',
      step: 'checking',
      status: 'failed',
      ms: Date.now() - checkStarted,
      error: errorJson(nuwaxError),
    });
    const result: UpgradeResult = { status: 'failed', error: errorJson(nuwaxError), step: 'checking', changed: false };
    emit({ type: 'result', result });
    return result;
  }
  emit({ type: 'step', step: 'checking', status: 'done', ms: Date.now() - checkStarted });
  const staged = readStaged(store);
  if (staged && !usedStaged && !options.fetched && fetched.manifest.version !== staged.version) {
    // The server answered and no longer offers the staged release (withdrawn, or superseded): it
    // must never be installed later by a fallback.
    logger.info(
      { staged: staged.version, offered: fetched.manifest.version },
      'the server no longer offers the staged release; forgetting it',
    );
    forgetStaged(store);
    await sweepStaging(paths.stagingDir, null, logger);
  }

  if (decision.strategy === 'none') {
    const result: UpgradeResult = {
      status: 'up_to_date',
      version: current,
      offered: decision.offered,
      reason: decision.reason,
    };
    emit({ type: 'result', result });
    return result;
  }

  const previouslyStaged = options.downloadOnly ? await alreadyStaged(store, decision) : undefined;
  const stagedNow = readStaged(store);
  const reusable =
    stagedNow?.tree !== undefined && [stagedNow.sha256, stagedNow.offeredSha256].includes(decision.package.sha256);
  if (!options.downloadOnly && stagedNow?.stagedRoot && !reusable) {
    // The install uses another package than the one staged (--force-full), or the record predates
    // reuse (no fingerprint): two extractions would double the disk staging takes; the staged one
    // is made again from the cache if ever needed.
    detachExtraction(store);
    await sweepStaging(paths.stagingDir, null, logger);
  }
  if (previouslyStaged) {
    // Pre-staging what is staged already (a daemon cycle while the server is down) redoes nothing.
    refreshStaged(store, previouslyStaged, fetched);
    const result: UpgradeResult = {
      status: 'staged',
      version: previouslyStaged.version,
      strategy: previouslyStaged.strategy,
      package: previouslyStaged.package ?? '',
      upgrade_id: previouslyStaged.upgradeId,
      steps: [],
    };
    emit({ type: 'result', result });
    return result;
  }

  upgradeId = store.upgrades.begin({
    fromVersion: current,
    toVersion: decision.offered,
    strategy: decision.strategy,
    trigger: options.trigger,
    startedBy: options.startedBy,
    reason: options.reason ?? (options.downloadOnly ? 'pre-stage' : 'upgrade'),
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
    notes: fetched.manifest.release_notes ?? null,
    downloadOnly: options.downloadOnly ?? false,
  });

  const runner = new StepRunner(store, upgradeId, emit, logger, config.upgrade.phase_timeout * 1000, options.signal);
  const context = { ...options, emit, plan, upgradeId, runner, fetched, decision };
  try {
    await prepareRelease(context, (forceFull) =>
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
        ...(options.hostArch ? { hostArch: options.hostArch } : {}),
      }),
    );
  } catch (error) {
    const failure = error instanceof StepFailure ? error : new StepFailure('staging', toNuwaxError(error));
    const result: UpgradeResult = {
      status: 'failed',
      error: errorJson(failure.error),
      step: failure.step,
      changed: false,
      upgrade_id: upgradeId,
    };
    store.upgrades.finish(upgradeId, 'failed', result);
    emit({ type: 'result', result });
    return result;
  }

  if (options.downloadOnly) {
    await recordStaged(store, plan, fetched, upgradeId, decision.package.sha256);
    await sweepStaging(paths.stagingDir, plan.stagedRoot, logger);
    const result: UpgradeResult = {
      status: 'staged',
      version: plan.to,
      strategy: plan.strategy,
      package: plan.packagePath ?? '',
      upgrade_id: upgradeId,
      steps: runner.timings,
    };
    store.upgrades.finish(upgradeId, 'staged', result);
    emit({ type: 'result', result });
    return result;
  }

  if (options.confirm && !(await options.confirm({ from: plan.from, to: plan.to, strategy: plan.strategy }))) {
    const result: UpgradeResult = {
      status: 'failed',
      error: { code: ErrorCodes.E_CANCELLED, message: 'Cancelled before the switch: nothing was changed' },
      step: 'stopping',
      changed: false,
      upgrade_id: upgradeId,
    };
    store.upgrades.finish(upgradeId, 'failed', result);
    emit({ type: 'result', result });
    return result;
  }

  const result = await switchRelease(context);
  emit({ type: 'result', result });
  return result;
}

function initialPlan(
  decision: Exclude<StrategyDecision, { strategy: 'none' }>,
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
