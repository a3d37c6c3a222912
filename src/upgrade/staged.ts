import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { exists } from '../fsutil/index.js';
import type { Logger } from '../log/index.js';
import { type FetchedManifest, resolvePackageUrls, verifyManifestBytes } from '../manifest/index.js';
import type { Store } from '../state/index.js';
import type { StrategyDecision } from '../strategy/index.js';
import type { UpgradePlan } from './plan.js';

/** A release pre-staged by `upgrade --download-only`, the daemon or `import`: kv key 'staged'. */
export interface StagedRecord {
  version: string;
  strategy: string;
  from: string | null;
  package: string | null;
  sha256: string | null;
  stagedRoot: string | null;
  /** The manifest's exact bytes, base64. */
  manifest: string;
  manifestUrl: string;
  signed: boolean;
  /** The signature that verified it (absent when no key was configured, or in records written before it was kept). */
  signature?: string;
  upgradeId: number;
}

const KEY = 'staged';

export function readStaged(store: Store): StagedRecord | undefined {
  return store.kv.get<StagedRecord>(KEY);
}

export function recordStaged(store: Store, plan: UpgradePlan, fetched: FetchedManifest, upgradeId: number): void {
  const record: StagedRecord = {
    version: plan.to,
    strategy: plan.strategy,
    from: plan.from,
    package: plan.packagePath,
    sha256: plan.packageSha256,
    stagedRoot: plan.stagedRoot,
    manifest: fetched.bytes.toString('base64'),
    manifestUrl: fetched.url,
    signed: fetched.signed,
    ...(fetched.signature ? { signature: fetched.signature } : {}),
    upgradeId,
  };
  store.kv.set(KEY, record);
}

/** The same package staged again under a newer manifest (re-signed, new notes): keep that manifest, without extracting again. */
export function refreshStaged(store: Store, staged: StagedRecord, fetched: FetchedManifest): void {
  const { signature: _old, ...rest } = staged;
  store.kv.set(KEY, { ...rest, manifest: fetched.bytes.toString('base64'), manifestUrl: fetched.url, signed: fetched.signed, ...(fetched.signature ? { signature: fetched.signature } : {}) } satisfies StagedRecord);
}

export function forgetStaged(store: Store): void {
  store.kv.delete(KEY);
}

/**
 * The staged release's manifest, checked again like a fresh one: against the public keys
 * configured now (keys added since it was staged apply to it too), then the strategy re-decides.
 */
export function stagedManifest(store: Store, config: Config): FetchedManifest | undefined {
  const staged = readStaged(store);
  if (!staged) return undefined;
  const bytes = Buffer.from(staged.manifest, 'base64');
  let verified: ReturnType<typeof verifyManifestBytes>;
  try {
    verified = verifyManifestBytes(bytes, staged.signature, config);
  } catch (error) {
    const reason = error instanceof NuwaxError ? error.message : String(error);
    throw new NuwaxError(ErrorCodes.E_SIGNATURE, `The staged release ${staged.version} cannot be installed: ${reason}; stage it again from a signed source`, { cause: error });
  }
  return { manifest: resolvePackageUrls(verified.manifest, staged.manifestUrl), url: staged.manifestUrl, bytes, signed: verified.signed, notModified: true, ...(staged.signature ? { signature: staged.signature } : {}) };
}

/** The same package is staged already, its files still there: a download-only run has nothing to do. */
export async function alreadyStaged(store: Store, decision: Exclude<StrategyDecision, { strategy: 'none' }>): Promise<StagedRecord | undefined> {
  const staged = readStaged(store);
  if (!staged || staged.version !== decision.offered || !staged.sha256 || staged.sha256 !== decision.package.sha256) return undefined;
  if (!staged.package || !(await exists(staged.package))) return undefined;
  if (!staged.stagedRoot || !(await exists(staged.stagedRoot))) return undefined;
  return staged;
}

/**
 * Removes the extractions under `cache/staging` that nothing needs: those of failed or interrupted
 * upgrades and of staged releases since replaced. Each run extracts into a folder of its own, so
 * without this a box whose server is down (the daemon falls back to its staged release every
 * cycle) or whose upgrade keeps failing would fill its disk. Run under the lock, after recovery;
 * `keep` is the staged release's root, if one should stay.
 */
export async function sweepStaging(stagingDir: string, keep: string | null, logger: Logger): Promise<void> {
  let names: string[];
  try {
    names = await readdir(stagingDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') logger.warn({ err: error, stagingDir }, 'cannot list old extractions');
    return;
  }
  const kept = keep ? path.resolve(keep) : null;
  for (const name of names) {
    const folder = path.resolve(stagingDir, name);
    if (kept && (kept === folder || kept.startsWith(folder + path.sep))) continue;
    try {
      await rm(folder, { recursive: true, force: true });
      logger.info({ folder }, 'removed an extraction no upgrade needs');
    } catch (error) {
      logger.warn({ err: error, folder }, 'cannot remove an old extraction');
    }
  }
}
