import { readFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, type Dispatcher } from '../http/index.js';
import type { Config } from '../config/index.js';
import { ErrorCodes, NuwaxError, throwIfAborted, toNuwaxError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../state/index.js';
import { parseManifest, resolvePackageUrls } from './parse.js';
import { type HttpAnswer, type HttpOptions, header, httpRequest } from './http.js';
import type { Manifest, PackageRef } from './schema.js';
import { loadPublicKey, verifySignature } from './signature.js';

/** A manifest is small; a larger body is a misbehaving or hostile server. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Rounds over the manifest URLs before a check gives up; the schedule's next poll tries again. */
const ROUNDS = 3;
const DEFAULT_BACKOFF = { baseMs: 500, maxMs: 30_000 };

export interface FetchedManifest {
  manifest: Manifest;
  url: string;
  bytes: Buffer;
  /** True when a signature was checked and verified against a configured key. */
  signed: boolean;
  /** The signature text that verified (kept with a staged release, to check it again when installed). */
  signature?: string;
  /** True when the server answered 304 and the cached copy was used. */
  notModified: boolean;
  /** The server's `Date` header, when it sent one (doctor compares the clock with it). */
  serverDate?: string;
}

export interface FetchManifestOptions {
  config: Config;
  store: Store;
  signal?: AbortSignal;
  logger?: Logger;
  dispatcher?: Dispatcher;
  /** Between rounds over the mirrors, and the cap on a Retry-After; default 500 ms doubling up to 30 s. */
  backoff?: { baseMs: number; maxMs: number };
}

export function createDispatcher(config: Config): Dispatcher | undefined {
  if (!config.server.ca_file) return undefined;
  return new Agent({ connect: { ca: readFileSync(config.server.ca_file) } });
}

function requestOptions(config: Config, options: { signal?: AbortSignal; dispatcher?: Dispatcher }): HttpOptions {
  const { min_rate, min_rate_window } = config.download;
  return {
    timeoutMs: config.server.timeout * 1000,
    limit: MAX_MANIFEST_BYTES,
    minRate: { bytesPerSecond: min_rate, windowMs: min_rate_window * 1000 },
    signal: options.signal,
    dispatcher: options.dispatcher,
  };
}

const CLIENT_ID_KEY = 'server:client_id';

/** nuwax API: POST /api/v1/clients/register {os, arch} → {client_id}, kept in SQLite. */
async function registerClient(options: FetchManifestOptions): Promise<string> {
  const base = options.config.server.base_url!;
  const answer = await httpRequest(new URL('api/v1/clients/register', withSlash(base)).toString(), {
    ...requestOptions(options.config, options),
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ os: os.platform(), arch: os.arch() }),
  });
  if (answer.status >= 300) {
    throw new NuwaxError(ErrorCodes.E_HTTP, `Client registration at ${base} failed with HTTP ${answer.status}`, {
      details: { statusCode: answer.status },
    });
  }
  let parsed: { client_id?: unknown; data?: { client_id?: unknown } };
  try {
    parsed = JSON.parse(answer.body.toString('utf8'));
  } catch (error) {
    throw new NuwaxError(ErrorCodes.E_MANIFEST, 'Client registration answered with invalid JSON', { cause: error });
  }
  const clientId = parsed.client_id ?? parsed.data?.client_id;
  if (typeof clientId !== 'string' || clientId === '') {
    throw new NuwaxError(ErrorCodes.E_MANIFEST, 'Client registration answered without a client_id');
  }
  options.store.kv.set(CLIENT_ID_KEY, clientId);
  return clientId;
}

function withSlash(base: string): string {
  return base.endsWith('/') ? base : `${base}/`;
}

export function manifestUrlFor(config: Config): string {
  if (config.server.manifest_url) return config.server.manifest_url;
  if (config.server.base_url)
    return new URL('api/v1/docker/checkVersion', withSlash(config.server.base_url)).toString();
  throw new NuwaxError(
    ErrorCodes.E_CONFIG,
    'No release server configured: set [server] manifest_url or base_url in config.toml',
  );
}

/** The manifest URL, then `[server] mirrors` (a URL ending in "/" gets the manifest's file name). */
export function manifestUrlsFor(config: Config): string[] {
  const primary = manifestUrlFor(config);
  const name = new URL(primary).pathname.split('/').pop() ?? '';
  const mirrors = config.server.mirrors.map((mirror) =>
    mirror.endsWith('/') ? new URL(name, mirror).toString() : mirror,
  );
  return [...new Set([primary, ...mirrors])];
}

interface CachedManifest {
  etag: string;
  body: string;
  /** The signature that verified over `body`: a 304 needs no new one. */
  signature?: string;
}

/**
 * Fetches the manifest with a conditional GET (a fleet polling every few minutes costs the server a
 * 304, and nothing more: the signature of unchanged bytes is the one already verified), from the
 * manifest URL or its mirrors, verifies its signature over the exact bytes when keys are
 * configured, and parses it.
 */
export async function fetchManifest(options: FetchManifestOptions): Promise<FetchedManifest> {
  const { config, store } = options;
  const urls = manifestUrlsFor(config);
  const usesApi = !config.server.manifest_url;
  let cached: CachedManifest | undefined;

  const get = async (url: string): Promise<HttpAnswer> => {
    cached = store.kv.get<CachedManifest>(`manifest:${url}`);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (cached) headers['if-none-match'] = cached.etag;
    if (usesApi) headers['x-client-id'] = store.kv.get<string>(CLIENT_ID_KEY) ?? (await registerClient(options));
    let answer = await httpRequest(url, { ...requestOptions(config, options), headers });
    if (answer.status === 401 && usesApi) {
      // As nuwax-cli does: the server forgot us; register again and retry once.
      options.logger?.info({ url }, 'server answered 401, registering the client again');
      headers['x-client-id'] = await registerClient(options);
      answer = await httpRequest(url, { ...requestOptions(config, options), headers });
    }
    return answer;
  };

  const { answer, url } = await fromMirrors(urls, get, options);
  const notModified = answer.status === 304 && cached !== undefined;
  const bytes = notModified && cached ? Buffer.from(cached.body, 'base64') : answer.body;
  const known = notModified ? cached?.signature : undefined;
  const signature = await checkSignature(bytes, url, options, known);
  const manifest = withManifestMirrors(parseManifest(bytes, `manifest from ${url}`), url, urls);
  const etag = header(answer.headers, 'etag');
  if (!notModified && etag) {
    const entry: CachedManifest = { etag, body: bytes.toString('base64'), signature: signature ?? undefined };
    store.kv.set(`manifest:${url}`, entry);
  } else if (notModified && cached && signature !== null && cached.signature !== signature) {
    store.kv.set(`manifest:${url}`, { ...cached, signature });
  }
  return {
    manifest,
    url,
    bytes,
    signed: signature !== null,
    signature: signature ?? undefined,
    notModified,
    serverDate: header(answer.headers, 'date'),
  };
}

/**
 * Package URLs resolve against the URL that served the manifest; the same relative URL under
 * every other manifest URL is a mirror of the package, so a package fails over as the manifest did.
 */
function withManifestMirrors(parsed: Manifest, servedFrom: string, urls: string[]): Manifest {
  const manifest = resolvePackageUrls(parsed, servedFrom);
  const others = urls.filter((url) => url !== servedFrom).map((url) => packageRefs(resolvePackageUrls(parsed, url)));
  packageRefs(manifest).forEach((ref, index) => {
    if (!ref) return;
    const alternates = others.map((refs) => refs[index]?.url).filter((url): url is string => url !== undefined);
    ref.mirrors = [...new Set([...ref.mirrors, ...alternates])].filter((mirror) => mirror !== ref.url);
  });
  return manifest;
}

/** Every package reference, always in the same order (the slots are kept, absent ones too). */
function packageRefs(manifest: Manifest): Array<PackageRef | undefined> {
  return [
    manifest.packages?.full,
    manifest.packages?.patch,
    manifest.platforms?.x86_64,
    manifest.platforms?.aarch64,
    manifest.patch?.x86_64,
    manifest.patch?.aarch64,
  ];
}

type Verdict = { answer: HttpAnswer } | { retryAfterMs: number | null; error: NuwaxError } | { error: NuwaxError };

/** 200 and 304 are answers; 408, 425, 429 and 5xx may pass (the next mirror, then a new round); the rest will not. */
function judge(answer: HttpAnswer, url: string): Verdict {
  if (answer.status === 200 || answer.status === 304) return { answer };
  const error = new NuwaxError(ErrorCodes.E_HTTP, `The release server answered HTTP ${answer.status} for ${url}`, {
    details: { statusCode: answer.status, url },
  });
  const transient = [408, 425, 429].includes(answer.status) || answer.status >= 500;
  return transient ? { error, retryAfterMs: retryAfterMs(answer) } : { error };
}

/** The n-th round waits between half and all of base·2ⁿ, capped (jitter spreads a fleet). */
function backoffDelay(round: number, backoff: { baseMs: number; maxMs: number }): number {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** round);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Retry-After in seconds or as an HTTP date, in milliseconds from now. */
function retryAfterMs(answer: HttpAnswer): number | null {
  const value = header(answer.headers, 'retry-after')?.trim();
  if (!value) return null;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

/**
 * Rounds over the URLs. A host that cannot be reached, a stall or a server error passes to the
 * next URL at once; only a new round waits (backoff with jitter, or the server's Retry-After when
 * longer, up to the cap; past the cap the check fails now and the schedule's next poll comes back).
 */
async function fromMirrors(
  urls: string[],
  get: (url: string) => Promise<HttpAnswer>,
  options: FetchManifestOptions,
): Promise<{ answer: HttpAnswer; url: string }> {
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  let candidates = urls;
  let last: NuwaxError | undefined;
  for (let round = 0; ; round += 1) {
    const again: string[] = [];
    let wait = 0;
    for (const url of candidates) {
      let verdict: Verdict;
      try {
        verdict = judge(await get(url), url);
      } catch (error) {
        const failure = toNuwaxError(error);
        const passing = [ErrorCodes.E_NETWORK, ErrorCodes.E_STALL] as string[];
        if (!passing.includes(failure.code) || failure.details?.redirectLoop) throw failure;
        verdict = { error: failure, retryAfterMs: null };
      }
      if ('answer' in verdict) return { answer: verdict.answer, url };
      last = verdict.error;
      options.logger?.info({ url, code: last.code, message: last.message }, 'manifest fetch failed; next server');
      if (!('retryAfterMs' in verdict)) continue;
      again.push(url);
      if (verdict.retryAfterMs !== null && verdict.retryAfterMs > backoff.maxMs) {
        throw new NuwaxError(
          ErrorCodes.E_HTTP,
          `${last.message}; it asks to come back in ${Math.ceil(verdict.retryAfterMs / 1000)} s, ` +
            'which the next scheduled check will do',
          { cause: last, details: { ...last.details, retryAfterMs: verdict.retryAfterMs } },
        );
      }
      wait = Math.max(wait, verdict.retryAfterMs ?? 0);
    }
    if (again.length === 0 || round + 1 >= ROUNDS) break;
    candidates = again;
    const delay = Math.max(backoffDelay(round, backoff), wait);
    await sleep(delay, undefined, { signal: options.signal }).catch(() => throwIfAborted(options.signal));
  }
  throw last ?? new NuwaxError(ErrorCodes.E_NETWORK, 'No release server to ask');
}

/** The signature that verified, or null without keys; `known` is the one verified before over these bytes. */
async function checkSignature(
  bytes: Buffer,
  url: string,
  options: FetchManifestOptions,
  known: string | undefined,
): Promise<string | null> {
  const keys = options.config.security.public_keys;
  if (keys.length === 0) return null;
  const publicKeys = keys.map(loadPublicKey);
  // Checked again against today's keys: a key removed from the config no longer verifies it.
  if (known !== undefined && verifySignature(bytes, known, publicKeys)) return known;
  const sigUrl = `${url}.sig`;
  const answer = await httpRequest(sigUrl, requestOptions(options.config, options));
  if (answer.status !== 200) {
    throw new NuwaxError(
      ErrorCodes.E_SIGNATURE,
      `The manifest signature ${sigUrl} is missing (HTTP ${answer.status}) and public keys are configured`,
      { details: { url: sigUrl, statusCode: answer.status } },
    );
  }
  const signature = answer.body.toString('utf8');
  if (!verifySignature(bytes, signature, publicKeys)) {
    throw new NuwaxError(
      ErrorCodes.E_SIGNATURE,
      `The manifest signature does not verify with any configured public key: refusing ${url}`,
      { details: { url } },
    );
  }
  return signature;
}

/** Reads a manifest and its signature from files (offline bundles, tests), with the same checks. */
export function verifyManifestBytes(
  bytes: Buffer,
  signature: string | undefined,
  config: Config,
): { manifest: Manifest; signed: boolean } {
  const keys = config.security.public_keys;
  let signed = false;
  if (keys.length > 0) {
    if (!signature)
      throw new NuwaxError(ErrorCodes.E_SIGNATURE, 'The manifest has no signature and public keys are configured');
    if (!verifySignature(bytes, signature, keys.map(loadPublicKey))) {
      throw new NuwaxError(
        ErrorCodes.E_SIGNATURE,
        'The manifest signature does not verify with any configured public key',
      );
    }
    signed = true;
  }
  return { manifest: parseManifest(bytes), signed };
}
