import path from 'node:path';
import type { Config, HomePaths } from '../config/index.js';
import type { UpgradeListener } from '../events/index.js';
import { ErrorCodes, toNuwaxError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { type FetchedManifest, parseManifest, resolvePackageUrls } from '../manifest/index.js';
import type { Store } from '../state/index.js';
import type { StrategyDecision } from '../strategy/index.js';
import { checkForUpdate, decide } from './check.js';
import { StepFailure, StepRunner, journaledListener } from './journal.js';
import { type UpgradePlan, savePlan } from './plan.js';
import type { Collaborators } from './ports.js';
import { recoverUnfinished } from './recovery.js';
import { errorJson, type UpgradeResult } from './result.js';
import { prepareRelease } from './prepare.js';
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

  let decision: StrategyDecision;
  let fetched: FetchedManifest;
  let current: string | null;
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
      ...(options.signal ? { signal: options.signal } : {}),
      logger,
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      ...(staged ? { fetched: staged } : {}),
    }).catch(async (error: unknown) => {
      // Offline: a release staged earlier (download-only, daemon, or an imported bundle on an
      // air-gapped box with no server configured at all) can still be installed (issue 7).
      const fallback = stagedManifest(store);
      const code = toNuwaxError(error).code;
      const noServer = !config.server.manifest_url && !config.server.base_url;
      if (!fallback || options.fetched || !(code === 'E_NETWORK' || (code === 'E_CONFIG' && noServer))) throw error;
      logger.warn({ err: error }, 'release server unreachable; using the staged release');
      return checkForUpdate({ config, paths, store, clientVersion: options.clientVersion, fetched: fallback, forceFull: options.forceFull ?? false, allowDowngrade: options.allowDowngrade ?? false, ...(options.hostArch ? { hostArch: options.hostArch } : {}) });
    });
    ({ decision, fetched, current } = check);
  } catch (error) {
    const nuwaxError = toNuwaxError(error);
    emit({ type: 'step', step: 'checking', status: 'failed', ms: Date.now() - checkStarted, error: errorJson(nuwaxError) });
    const result: UpgradeResult = { status: 'failed', error: errorJson(nuwaxError), step: 'checking', changed: false };
    emit({ type: 'result', result });
    return result;
  }
  emit({ type: 'step', step: 'checking', status: 'done', ms: Date.now() - checkStarted });

  if (decision.strategy === 'none') {
    const result: UpgradeResult = { status: 'up_to_date', version: current, offered: decision.offered, reason: decision.reason };
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
  emit({ type: 'plan', upgradeId, from: current, to: decision.offered, strategy: decision.strategy, size: decision.package.size, notes: fetched.manifest.release_notes ?? null, downloadOnly: options.downloadOnly ?? false });

  const runner = new StepRunner(store, upgradeId, emit, logger, config.upgrade.phase_timeout * 1000, options.signal);
  const context = { ...options, emit, plan, upgradeId, runner, fetched, decision };
  try {
    await prepareRelease(context, (forceFull) => decide({ config, paths, store, clientVersion: options.clientVersion, fetched, current, forceFull, allowDowngrade: options.allowDowngrade ?? false, ...(options.hostArch ? { hostArch: options.hostArch } : {}) }));
  } catch (error) {
    const failure = error instanceof StepFailure ? error : new StepFailure('staging', toNuwaxError(error));
    const result: UpgradeResult = { status: 'failed', error: errorJson(failure.error), step: failure.step, changed: false, upgrade_id: upgradeId };
    store.upgrades.finish(upgradeId, 'failed', result);
    emit({ type: 'result', result });
    return result;
  }

  if (options.downloadOnly) {
    store.kv.set('staged', { version: plan.to, strategy: plan.strategy, from: plan.from, package: plan.packagePath, sha256: plan.packageSha256, stagedRoot: plan.stagedRoot, manifest: fetched.bytes.toString('base64'), manifestUrl: fetched.url, signed: fetched.signed, upgradeId });
    const result: UpgradeResult = { status: 'staged', version: plan.to, strategy: plan.strategy, package: plan.packagePath ?? '', upgrade_id: upgradeId, steps: runner.timings };
    store.upgrades.finish(upgradeId, 'staged', result);
    emit({ type: 'result', result });
    return result;
  }

  if (options.confirm && !(await options.confirm({ from: plan.from, to: plan.to, strategy: plan.strategy }))) {
    const result: UpgradeResult = { status: 'failed', error: { code: ErrorCodes.E_CANCELLED, message: 'Cancelled before the switch: nothing was changed' }, step: 'stopping', changed: false, upgrade_id: upgradeId };
    store.upgrades.finish(upgradeId, 'failed', result);
    emit({ type: 'result', result });
    return result;
  }

  const result = await switchRelease(context);
  emit({ type: 'result', result });
  return result;
}

function initialPlan(decision: Exclude<StrategyDecision, { strategy: 'none' }>, current: string | null, config: Config, paths: HomePaths, upgradeId: number, skipBackup: boolean): UpgradePlan {
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

interface StagedRecord {
  manifest: string;
  manifestUrl: string;
  signed: boolean;
  stagedRoot: string | null;
}

/** A release pre-staged by `--download-only` or the daemon, re-checked like a fresh one. */
function stagedManifest(store: Store): FetchedManifest | undefined {
  const staged = store.kv.get<StagedRecord>('staged');
  if (!staged) return undefined;
  const bytes = Buffer.from(staged.manifest, 'base64');
  const manifest = resolvePackageUrls(parseManifest(bytes, 'staged manifest'), staged.manifestUrl);
  return { manifest, url: staged.manifestUrl, bytes, signed: staged.signed, notModified: true };
}

