import { toNuwaxError } from '../../errors/index.js';
import type { UpgradeListener } from '../../events/index.js';
import { type CheckResult, checkForUpdate } from '../check.js';
import type { StepInfo, UpgradeOptions } from '../context.js';
import { fallsBackToStaged, stagedFallback } from '../staged.js';

/** Runs before the upgrade is recorded (it decides whether there is one), so outside the loop. */
export const checking: StepInfo = {
  name: 'checking',
  phase: 'prepare',
  downtime: false,
  noReturn: false,
  summary: 'fetch the manifest (conditional GET), verify its signature, decide full, patch or none',
};

/**
 * The manifest and the decision. Offline, a release staged earlier (download-only, daemon, or an
 * imported bundle on an air-gapped box with no server configured at all) can still be installed.
 */
export async function checkRelease(
  options: UpgradeOptions,
  emit: UpgradeListener,
): Promise<CheckResult & { usedStaged: boolean }> {
  const { config, paths, store, logger } = options;
  const common = {
    config,
    paths,
    store,
    clientVersion: options.clientVersion,
    hostArch: options.hostArch,
    forceFull: options.forceFull ?? false,
    ignoreRollout: options.ignoreRollout,
  };
  try {
    const check = await checkForUpdate({
      ...common,
      allowDowngrade: options.allowDowngrade ?? false,
      signal: options.signal,
      logger,
      dispatcher: options.dispatcher,
      fetched: options.fetched,
    });
    return { ...check, usedStaged: false };
  } catch (error) {
    const original = toNuwaxError(error);
    if (options.fetched || !fallsBackToStaged(original.code, config)) throw error;
    const fallback = stagedFallback(store, config, original);
    if (!fallback) throw error;
    // One line at the default level; the stack only for whoever asks for debug.
    logger.warn(
      { code: original.code },
      `cannot use the release server (${original.code}); using the staged release: ${original.message}`,
    );
    logger.debug({ err: error }, 'the release server failure');
    emit({
      type: 'log',
      level: 'warn',
      step: 'checking',
      message: `The release server cannot be used (${original.message}); installing the staged release`,
    });
    // What the server's offer allowed (--allow-downgrade) is not carried over to the staged release.
    const check = await checkForUpdate({ ...common, fetched: fallback, allowDowngrade: false });
    return { ...check, usedStaged: true };
  }
}
