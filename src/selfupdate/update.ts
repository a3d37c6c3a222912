import { rm } from 'node:fs/promises';
import path from 'node:path';
import { type Dispatcher, request } from '../http/index.js';
import type { Config } from '../config/index.js';
import { download } from '../downloader/index.js';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../state/index.js';
import { compareVersions } from '../versions/index.js';
import {
  type ClientLayout,
  clearPending,
  currentVersion,
  installVersion,
  layoutOf,
  MAX_UNCONFIRMED_STARTS,
  pruneVersions,
  readPending,
  runningClientRoot,
  selfTest,
  switchCurrent,
  writePending,
} from './layout.js';
import { type ClientRelease, clientManifestUrl, fetchClientManifest } from './manifest.js';
import { parseMinisignPublicKey, verifyMinisignFile } from './minisign.js';
import { CLIENT_UPDATE_KEYS, type LastClientUpdate } from './status.js';

const { journal: JOURNAL_KEY, failed: FAILED_KEY, last: LAST_KEY, available: AVAILABLE_KEY } = CLIENT_UPDATE_KEYS;
/** A version interrupted this often (kills, power loss) is not tried again by itself. */
const MAX_INTERRUPTED = 3;

export interface SelfUpdateContext {
  config: Config;
  home: string;
  downloadsDir: string;
  store: Store;
  logger: Logger;
  clientVersion: string;
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
  /** Defaults to the root this client runs from. */
  clientRoot?: string;
  selfTestTimeoutMs?: number;
}

export type SelfUpdateResult =
  | { status: 'up_to_date'; current: string; offered: string }
  | { status: 'available'; current: string; offered: string; notes?: string }
  | { status: 'skipped'; current: string; offered: string; reason: string }
  | { status: 'switched'; from: string; to: string }
  | { status: 'success'; from: string; to: string }
  | { status: 'failed'; from: string; to: string; error: { code: string; message: string }; kept: string };

interface Journal {
  from: string;
  to: string;
  phase: 'installing' | 'switching' | 'switched';
  started_at: string;
}

export interface FailedVersion {
  reason: string;
  code: string;
  interrupted: number;
  at: string;
}

function failedVersions(store: Store): Record<string, FailedVersion> {
  return store.kv.get<Record<string, FailedVersion>>(FAILED_KEY) ?? {};
}

function recordFailure(store: Store, version: string, code: string, reason: string, interrupted = false): void {
  const failed = failedVersions(store);
  const previous = failed[version];
  failed[version] = {
    reason,
    code,
    interrupted: (previous?.interrupted ?? 0) + (interrupted ? 1 : 0),
    at: new Date().toISOString(),
  };
  store.kv.set(FAILED_KEY, failed);
}

/** Why this version is not tried again, or undefined when it may be. */
function refusal(store: Store, version: string): string | undefined {
  const failed = failedVersions(store)[version];
  if (!failed) return undefined;
  if (failed.code === 'interrupted' && failed.interrupted < MAX_INTERRUPTED) return undefined;
  return `client ${version} failed before (${failed.reason}); it is not tried again`;
}

/** POST {base_url}/api/v1/clients/self-upgrade-history, as nuwax-cli reports; failures only logged. */
async function report(context: SelfUpdateContext, last: LastClientUpdate): Promise<void> {
  const base = context.config.server.base_url;
  if (!base) return;
  const url = new URL('api/v1/clients/self-upgrade-history', base.endsWith('/') ? base : `${base}/`).toString();
  const clientId = context.store.kv.get<string>('server:client_id');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (clientId) headers['x-client-id'] = clientId;
  try {
    const response = await request(url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ from_version: last.from, to_version: last.to, status: last.status, details: last.reason }),
      dispatcher: context.dispatcher,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    await response.body.dump();
    if (response.statusCode >= 300)
      context.logger.warn({ url, status: response.statusCode }, 'self-update: report refused');
  } catch (error) {
    context.logger.warn({ err: error, url }, 'self-update: the report did not reach the server');
  }
}

async function finish(context: SelfUpdateContext, last: Omit<LastClientUpdate, 'at'>): Promise<void> {
  const entry = { ...last, at: new Date().toISOString() };
  context.store.kv.set(LAST_KEY, entry);
  context.store.kv.delete(JOURNAL_KEY);
  context.store.kv.delete(AVAILABLE_KEY);
  context.logger.info(entry, 'self-update: finished');
  await report(context, entry);
}

function layoutFor(context: SelfUpdateContext): ClientLayout {
  const root = context.clientRoot ?? runningClientRoot();
  if (!root) {
    throw new NuwaxError(
      ErrorCodes.E_SELF_UPDATE,
      'This nuwax does not run from a release archive (<root>/versions/<version>/): it cannot update itself',
    );
  }
  return layoutOf(root);
}

/**
 * Finishes or undoes a client update that a crash interrupted, confirms a switched-to client that
 * now runs, and puts back the previous client when the new one did not start (SPEC 9's rule for
 * the client itself). Run under the home's lock, at every daemon start and self-update.
 */
export async function recoverClientUpdate(context: SelfUpdateContext): Promise<LastClientUpdate | undefined> {
  const root = context.clientRoot ?? runningClientRoot();
  if (!root) return undefined;
  const layout = layoutOf(root);
  const journal = context.store.kv.get<Journal>(JOURNAL_KEY);
  let pending = await readPending(layout);
  if (!journal && !pending) return undefined;
  const current = await currentVersion(layout);
  if (pending && current === pending.previous) {
    // Interrupted between marking the switch and making it: `current` never moved.
    await clearPending(layout);
    pending = undefined;
  }
  const running = context.clientVersion;
  if (pending && current === running) {
    // The switched-to client started: it is confirmed, and the one before it is kept for a rollback.
    await clearPending(layout);
    await pruneVersions(layout, [current, pending.previous]);
    await finish(context, { from: pending.previous, to: current, status: 'success' });
    return context.store.kv.get<LastClientUpdate>(LAST_KEY);
  }
  if (pending && pending.previous === running && pending.starts > MAX_UNCONFIRMED_STARTS) {
    const reason = `client ${current} did not confirm a start after ${MAX_UNCONFIRMED_STARTS} daemon starts`;
    await switchCurrent(layout, running);
    await clearPending(layout);
    recordFailure(context.store, current, ErrorCodes.E_SELF_UPDATE, reason);
    await finish(context, { from: running, to: current, status: 'rolled_back', reason });
    return context.store.kv.get<LastClientUpdate>(LAST_KEY);
  }
  if (pending || !journal) return undefined;
  if (current === journal.to) {
    // Switched, then interrupted before the confirmation: the new client runs, so it is finished.
    await finish(context, { from: journal.from, to: journal.to, status: 'success' });
  } else {
    await pruneVersions(layout, [current, journal.from]);
    recordFailure(context.store, journal.to, 'interrupted', `interrupted while ${journal.phase}`, true);
    await finish(context, { from: journal.from, to: journal.to, status: 'interrupted', reason: journal.phase });
  }
  return context.store.kv.get<LastClientUpdate>(LAST_KEY);
}

function trustedKeys(config: Config) {
  const keys = config.security.client_public_keys.map((key) => parseMinisignPublicKey(key));
  if (keys.length === 0) {
    throw new NuwaxError(
      ErrorCodes.E_UNVERIFIED,
      'security.client_public_keys is empty: a client archive is never installed unverified',
    );
  }
  return keys;
}

/** Asks where the client's releases are announced; records what is available for `status`. */
export async function checkClientRelease(context: SelfUpdateContext): Promise<ClientRelease | undefined> {
  const url = clientManifestUrl(context.config);
  if (!url) return undefined;
  const release = await fetchClientManifest(url, {
    dispatcher: context.dispatcher,
    timeoutMs: context.config.server.timeout * 1000,
    signal: context.signal,
  });
  if (compareVersions(release.version, context.clientVersion) > 0) {
    context.store.kv.set(AVAILABLE_KEY, { version: release.version, checked_at: new Date().toISOString() });
  } else context.store.kv.delete(AVAILABLE_KEY);
  return release;
}

/**
 * nuwax updates itself: download (resume, hash, mirrors), verify the minisign signature, install
 * side by side, self-test, switch `current`. `confirm` (by hand) runs the new client through the
 * launcher after the switch and puts the previous one back if that fails; the daemon instead exits
 * and the new client confirms at its start.
 */
export async function runSelfUpdate(
  context: SelfUpdateContext,
  options: { checkOnly?: boolean; confirm: boolean },
): Promise<SelfUpdateResult> {
  const layout = layoutFor(context);
  await recoverClientUpdate(context);
  const running = context.clientVersion;
  const release = await checkClientRelease(context);
  if (!release) {
    throw new NuwaxError(ErrorCodes.E_CONFIG, 'No [server] client_manifest_url or base_url: nowhere to look');
  }
  const offered = release.version;
  if (compareVersions(offered, running) <= 0) return { status: 'up_to_date', current: running, offered };
  const refused = refusal(context.store, offered);
  if (refused) return { status: 'skipped', current: running, offered, reason: refused };
  if (options.checkOnly) return { status: 'available', current: running, offered, notes: release.notes };
  // Before anything is recorded against the version: keys added later make it installable.
  trustedKeys(context.config);
  try {
    await install(context, layout, release);
  } catch (error) {
    const failure = toNuwaxError(error);
    if (failure.code === ErrorCodes.E_ABORTED || failure.code === ErrorCodes.E_CANCELLED) throw failure;
    // A failure before the switch: the running client stays; the version is not tried again.
    if (failure.code !== ErrorCodes.E_NETWORK && failure.code !== ErrorCodes.E_HTTP) {
      recordFailure(context.store, offered, failure.code, failure.message);
    }
    if ((await currentVersion(layout)) !== offered) {
      await rm(path.join(layout.versionsDir, offered), { recursive: true, force: true });
    }
    await finish(context, { from: running, to: offered, status: 'failed', reason: failure.message });
    return {
      status: 'failed',
      from: running,
      to: offered,
      error: { code: failure.code, message: failure.message },
      kept: running,
    };
  }
  if (!options.confirm) return { status: 'switched', from: running, to: offered };
  return confirmByHand(context, layout, running, offered);
}

async function install(context: SelfUpdateContext, layout: ClientLayout, release: ClientRelease): Promise<void> {
  const { store, config } = context;
  const running = context.clientVersion;
  const platform = release.platform;
  if (!platform) {
    throw new NuwaxError(ErrorCodes.E_NO_PACKAGE, `Client ${release.version} has no ${release.platformKey} archive`);
  }
  const keys = trustedKeys(config);
  if (!platform.signature) throw new NuwaxError(ErrorCodes.E_SIGNATURE, 'The client archive has no signature');
  if (!platform.sha256) {
    throw new NuwaxError(
      ErrorCodes.E_MANIFEST,
      'The client release gives no sha256 for the archive (see nuwax release)',
    );
  }
  store.kv.set(JOURNAL_KEY, {
    from: running,
    to: release.version,
    phase: 'installing',
    started_at: new Date().toISOString(),
  });
  const downloaded = await download({
    urls: [
      platform.url,
      ...config.server.mirrors.map((mirror) => new URL(path.basename(platform.url), mirror).toString()),
    ],
    sha256: platform.sha256,
    size: platform.size,
    directory: context.downloadsDir,
    store,
    signal: context.signal,
    retries: config.download.retries,
    stallTimeoutMs: config.download.stall_timeout * 1000,
    logger: context.logger,
    dispatcher: context.dispatcher,
    fileName: path.basename(new URL(platform.url).pathname),
  });
  await verifyMinisignFile(downloaded.path, platform.signature, keys, context.signal);
  const versionDir = await installVersion(layout, downloaded.path, release.version, context.signal);
  const test = await selfTest(
    path.join(versionDir, 'bin', 'nuwax'),
    release.version,
    context.home,
    context.selfTestTimeoutMs ?? 120_000,
  );
  if (!test.ok) {
    throw new NuwaxError(ErrorCodes.E_SELF_UPDATE, `Client ${release.version} failed its self-test: ${test.reason}`);
  }
  store.kv.set(JOURNAL_KEY, { ...store.kv.get<Journal>(JOURNAL_KEY), phase: 'switching' });
  await writePending(layout, running);
  await switchCurrent(layout, release.version);
  store.kv.set(JOURNAL_KEY, { ...store.kv.get<Journal>(JOURNAL_KEY), phase: 'switched' });
}

async function confirmByHand(
  context: SelfUpdateContext,
  layout: ClientLayout,
  running: string,
  offered: string,
): Promise<SelfUpdateResult> {
  const test = await selfTest(
    path.join(layout.root, 'bin', 'nuwax'),
    offered,
    context.home,
    context.selfTestTimeoutMs ?? 120_000,
  );
  if (test.ok) {
    await clearPending(layout);
    await pruneVersions(layout, [offered, running]);
    await finish(context, { from: running, to: offered, status: 'success' });
    return { status: 'success', from: running, to: offered };
  }
  const reason = `after the switch: ${test.reason}`;
  await switchCurrent(layout, running);
  await clearPending(layout);
  recordFailure(context.store, offered, ErrorCodes.E_SELF_UPDATE, reason);
  await finish(context, { from: running, to: offered, status: 'rolled_back', reason });
  return {
    status: 'failed',
    from: running,
    to: offered,
    error: { code: ErrorCodes.E_SELF_UPDATE, message: reason },
    kept: running,
  };
}

/** The exit code of a daemon that switched to a new client: systemd's RestartForceExitStatus starts it. */
export const CLIENT_RESTART_EXIT_CODE = 75;

/**
 * The daemon's client update, between cycles (it holds the home's lock, so never during an
 * application upgrade). True when it switched `current`: the daemon then exits for the new client.
 */
export async function updateClientFromDaemon(context: SelfUpdateContext): Promise<boolean> {
  if (!(context.clientRoot ?? runningClientRoot()) || !clientManifestUrl(context.config)) return false;
  if (context.config.security.client_public_keys.length === 0) {
    context.logger.debug('daemon: no [security] client_public_keys, so no client update');
    return false;
  }
  try {
    const result = await runSelfUpdate(context, { confirm: false });
    if (result.status !== 'up_to_date') context.logger.warn({ result }, 'daemon: client update');
    return result.status === 'switched';
  } catch (error) {
    context.logger.warn({ err: error, code: toNuwaxError(error).code }, 'daemon: client update failed');
    return false;
  }
}
