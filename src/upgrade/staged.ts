import { createHash } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { scanTree } from '../apply/index.js';
import type { Config, HomePaths } from '../config/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { exists } from '../fsutil/index.js';
import type { Logger } from '../log/index.js';
import { type FetchedManifest, parseManifest, resolvePackageUrls, verifyManifestBytes } from '../manifest/index.js';
import type { Store } from '../state/index.js';
import type { InstallDecision } from './context.js';
import type { UpgradePlan } from './plan.js';

/** A release pre-staged by `upgrade --download-only`, the daemon or `import`: kv key 'staged'. */
export interface StagedRecord {
  version: string;
  strategy: string;
  from: string | null;
  package: string | null;
  sha256: string | null;
  stagedRoot: string | null;
  /** The folder under cache/staging holding `stagedRoot` (removed with it). */
  stagingDir?: string;
  /** `treeFingerprint` of `stagedRoot` when staged: an install reuses the extraction only while it matches. */
  tree?: string;
  /** The manifest's exact bytes, base64. */
  manifest: string;
  manifestUrl: string;
  signed: boolean;
  /** The signature that verified it (absent when no key was configured, or in records written before it was kept). */
  signature?: string;
  /** The hash of the package the manifest offered (a patch may have been replaced by the full package at staging). */
  offeredSha256?: string | null;
  upgradeId: number;
}

const KEY = 'staged';

export function readStaged(store: Store): StagedRecord | undefined {
  return store.kv.get<StagedRecord>(KEY);
}

export async function recordStaged(
  store: Store,
  plan: UpgradePlan,
  fetched: FetchedManifest,
  upgradeId: number,
  offeredSha256: string | null,
): Promise<void> {
  const tree = plan.stagedRoot ? await treeFingerprint(plan.stagedRoot) : null;
  const record: StagedRecord = {
    version: plan.to,
    strategy: plan.strategy,
    from: plan.from,
    package: plan.packagePath,
    sha256: plan.packageSha256,
    stagedRoot: plan.stagedRoot,
    stagingDir: plan.stagingDir,
    manifest: fetched.bytes.toString('base64'),
    manifestUrl: fetched.url,
    signed: fetched.signed,
    offeredSha256,
    upgradeId,
  };
  if (tree) record.tree = tree;
  if (fetched.signature) record.signature = fetched.signature;
  store.kv.set(KEY, record);
}

/** The same package staged again under a newer manifest (re-signed, new notes): keep that manifest, extract nothing. */
export function refreshStaged(store: Store, staged: StagedRecord, fetched: FetchedManifest): void {
  const { signature: _old, ...rest } = staged;
  const record: StagedRecord = {
    ...rest,
    manifest: fetched.bytes.toString('base64'),
    manifestUrl: fetched.url,
    signed: fetched.signed,
  };
  if (fetched.signature) record.signature = fetched.signature;
  store.kv.set(KEY, record);
}

export function forgetStaged(store: Store): void {
  store.kv.delete(KEY);
}

/**
 * Failures of the release server after which the staged release is installed instead (doctor
 * judges by the same rule): it cannot be reached, or its answer is not a manifest we accept (a
 * proxy's 502, a captive portal's HTML, a bad signature). Not a failure of this box (E_IO,
 * E_STATE), an abort, or a server misconfigured in config.toml; and with no server at all.
 */
const SERVER_FAILURES = new Set<string>([
  ErrorCodes.E_NETWORK,
  ErrorCodes.E_TIMEOUT,
  ErrorCodes.E_STALL,
  ErrorCodes.E_HTTP,
  ErrorCodes.E_MANIFEST,
  ErrorCodes.E_MANIFEST_EXPIRED,
  ErrorCodes.E_SIGNATURE,
]);

export function fallsBackToStaged(code: string, config: Config): boolean {
  const noServer = !config.server.manifest_url && !config.server.base_url;
  return SERVER_FAILURES.has(code) || (code === ErrorCodes.E_CONFIG && noServer);
}

/**
 * The staged release's manifest, checked again like a fresh one: against the public keys
 * configured now (keys added since it was staged apply to it too), then the strategy re-decides.
 */
export function stagedManifest(store: Store, config: Config): FetchedManifest | undefined {
  const staged = readStaged(store);
  if (!staged) return undefined;
  const bytes = Buffer.from(staged.manifest, 'base64');
  const location = { url: staged.manifestUrl, bytes, notModified: true } as const;
  if (staged.signed && staged.signature === undefined) {
    // Staged by an nuwax that verified it but kept no signature: trusted as verified then.
    return {
      ...location,
      manifest: resolvePackageUrls(parseManifest(bytes, 'staged manifest'), staged.manifestUrl),
      signed: true,
    };
  }
  const verified = verifyManifestBytes(bytes, staged.signature, config);
  const manifest: FetchedManifest = {
    ...location,
    manifest: resolvePackageUrls(verified.manifest, staged.manifestUrl),
    signed: verified.signed,
  };
  if (staged.signature) manifest.signature = staged.signature;
  return manifest;
}

/**
 * The staged release to install when the server failed with `original`, if there is one. When it
 * cannot be used either, the error stays the server's (the daemon backs off on it), and says why.
 */
export function stagedFallback(store: Store, config: Config, original: NuwaxError): FetchedManifest | undefined {
  try {
    return stagedManifest(store, config);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const version = readStaged(store)?.version ?? '?';
    throw new NuwaxError(
      original.code,
      `${original.message}; the staged release ${version} cannot be installed either: ${reason} ` +
        '(stage it again from a signed source)',
      {
        cause: original,
        details: {
          ...original.details,
          staged: { version, error: error instanceof NuwaxError ? error.toJSON() : { message: reason } },
        },
      },
    );
  }
}

/** The same package is staged already, its files still there: a download-only run has nothing to do. */
export async function alreadyStaged(store: Store, decision: InstallDecision): Promise<StagedRecord | undefined> {
  const staged = readStaged(store);
  const offered = decision.package.sha256;
  if (!staged || staged.version !== decision.offered || !offered || (staged.offeredSha256 ?? staged.sha256) !== offered)
    return undefined;
  if (!staged.package || !(await exists(staged.package))) return undefined;
  if (!staged.stagedRoot || !(await exists(staged.stagedRoot))) return undefined;
  if (staged.tree !== undefined && (await treeFingerprint(staged.stagedRoot)) !== staged.tree) return undefined;
  return staged;
}

/**
 * What a directory tree holds, by name, kind, size, mode and mtime (not content: the package it
 * came from is re-hashed before use, and reading every byte again is what reuse saves). An
 * extraction that lost a file, gained one, or had one edited since it was staged no longer matches.
 */
export async function treeFingerprint(root: string): Promise<string> {
  const entries = await scanTree(root, { hash: false, times: true });
  return createHash('sha256')
    .update(JSON.stringify([...entries]))
    .digest('hex');
}

/**
 * The extraction made when this package was staged, for an install to use instead of extracting
 * it again (the window is spent on the switch). Only when the same package was extracted
 * and the tree is as it was left; a tree that changed is removed and forgotten, so that the
 * install extracts anew with one extraction on disk.
 */
export async function stagedExtraction(
  store: Store,
  sha256: string | null,
  stagingRoot: string,
  logger: Logger,
): Promise<{ root: string; stagingDir: string } | undefined> {
  const staged = readStaged(store);
  if (!sha256 || !staged?.stagedRoot || !staged.stagingDir || staged.tree === undefined || staged.sha256 !== sha256)
    return undefined;
  // Only a folder of cache/staging is ever reused or removed, whatever the record says.
  if (path.dirname(path.resolve(staged.stagingDir)) !== path.resolve(stagingRoot)) return undefined;
  // A tree gone is a tree changed; any other failure to read it is an error, not "absent".
  const fingerprint = await treeFingerprint(staged.stagedRoot).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  });
  if (fingerprint === staged.tree) return { root: staged.stagedRoot, stagingDir: staged.stagingDir };
  logger.warn(
    { stagedRoot: staged.stagedRoot },
    'the staged extraction changed since it was staged; extracting the package again',
  );
  detachExtraction(store);
  await rm(staged.stagingDir, { recursive: true, force: true });
  return undefined;
}

/**
 * The staged record no longer owns its extraction (an install is about to move files out of it,
 * or it changed): the release stays staged, and the next pre-stage or install extracts it again
 * from the package kept in the download cache. With `onlyIf`, only when that folder is the staged one.
 */
export function detachExtraction(store: Store, onlyIf?: { stagingDir: string }): void {
  const staged = readStaged(store);
  if (!staged || (onlyIf && staged.stagingDir !== onlyIf.stagingDir)) return;
  const { tree: _tree, stagingDir: _dir, ...rest } = staged;
  store.kv.set(KEY, { ...rest, stagedRoot: null } satisfies StagedRecord);
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
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      logger.warn({ err: error, stagingDir }, 'cannot list old extractions');
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

/** Before an upgrade, after recovery: only the staged release's extraction stays in cache/staging. */
export async function sweepUnstaged(store: Store, paths: HomePaths, logger: Logger): Promise<void> {
  await sweepStaging(paths.stagingDir, readStaged(store)?.stagedRoot ?? null, logger);
}

/**
 * The server answered and no longer offers the staged release (withdrawn, or superseded): it must
 * never be installed later by a fallback. Not when the staged release is what is being installed.
 */
export async function forgetWithdrawn(
  store: Store,
  paths: HomePaths,
  logger: Logger,
  offered: string,
  fromServer: boolean,
): Promise<void> {
  const staged = readStaged(store);
  if (!staged || !fromServer || offered === staged.version) return;
  logger.info({ staged: staged.version, offered }, 'the server no longer offers the staged release; forgetting it');
  forgetStaged(store);
  await sweepStaging(paths.stagingDir, null, logger);
}

/**
 * An install of another package than the one staged (--force-full), or of a record from before
 * reuse (no fingerprint): two extractions would double the disk staging takes, so the staged one
 * goes; it is made again from the cache if ever needed.
 */
export async function dropUnusableExtraction(
  store: Store,
  paths: HomePaths,
  logger: Logger,
  decision: InstallDecision,
): Promise<void> {
  const staged = readStaged(store);
  const reusable =
    staged?.tree !== undefined && [staged.sha256, staged.offeredSha256].includes(decision.package.sha256);
  if (!staged?.stagedRoot || reusable) return;
  detachExtraction(store);
  await sweepStaging(paths.stagingDir, null, logger);
}

/** A download-only run prepared this release: record it staged, keep its extraction and nothing else. */
export async function keepStaged(
  store: Store,
  paths: HomePaths,
  logger: Logger,
  staging: { plan: UpgradePlan; fetched: FetchedManifest; upgradeId: number; offeredSha256: string | null },
): Promise<void> {
  await recordStaged(store, staging.plan, staging.fetched, staging.upgradeId, staging.offeredSha256);
  await sweepStaging(paths.stagingDir, staging.plan.stagedRoot, logger);
}
