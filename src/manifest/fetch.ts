import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Agent, type Dispatcher, getGlobalDispatcher, interceptors, request } from 'undici';
import type { Config } from '../config/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../state/index.js';
import { parseManifest, resolvePackageUrls } from './parse.js';
import type { Manifest } from './schema.js';
import { loadPublicKey, verifySignature } from './signature.js';

/** A manifest is small; a larger body is a misbehaving or hostile server. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const USER_AGENT = 'nuwax';

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
}

export function createDispatcher(config: Config): Dispatcher | undefined {
  if (!config.server.ca_file) return undefined;
  return new Agent({ connect: { ca: readFileSync(config.server.ca_file) } });
}

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

async function readBounded(body: AsyncIterable<Uint8Array>, limit: number, url: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > limit)
      throw new NuwaxError(ErrorCodes.E_MANIFEST, `The answer from ${url} is larger than ${limit} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

async function httpRequest(
  url: string,
  options: {
    method?: 'GET' | 'POST';
    headers?: Record<string, string>;
    body?: string;
    config: Config;
    signal?: AbortSignal;
    dispatcher?: Dispatcher;
  },
): Promise<HttpAnswer> {
  const timeout = options.config.server.timeout * 1000;
  try {
    const response = await request(url, {
      method: options.method ?? 'GET',
      headers: { 'user-agent': USER_AGENT, ...options.headers },
      body: options.body,
      signal: options.signal,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      // undici 7 follows redirects only through the interceptor (bounded).
      dispatcher: (options.dispatcher ?? getGlobalDispatcher()).compose(interceptors.redirect({ maxRedirections: 5 })),
    });
    const body = await readBounded(response.body, MAX_MANIFEST_BYTES, url);
    return { status: response.statusCode, headers: response.headers, body };
  } catch (error) {
    if (error instanceof NuwaxError) throw error;
    if ((error as Error).name === 'AbortError')
      throw new NuwaxError(ErrorCodes.E_ABORTED, 'Cancelled', { cause: error });
    const cause = error as NodeJS.ErrnoException;
    const why = cause.code ?? cause.message;
    throw new NuwaxError(ErrorCodes.E_NETWORK, `Cannot reach the release server at ${new URL(url).origin} (${why})`, {
      cause: error,
      details: { url },
    });
  }
}

function header(headers: HttpAnswer['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const CLIENT_ID_KEY = 'server:client_id';

/** nuwax API: POST /api/v1/clients/register {os, arch} → {client_id}, kept in SQLite. */
async function registerClient(options: FetchManifestOptions): Promise<string> {
  const base = options.config.server.base_url!;
  const answer = await httpRequest(new URL('api/v1/clients/register', withSlash(base)).toString(), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ os: os.platform(), arch: os.arch() }),
    config: options.config,
    signal: options.signal,
    dispatcher: options.dispatcher,
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

interface CachedManifest {
  etag: string;
  body: string;
}

/**
 * Fetches the manifest with a conditional GET (a fleet polling every few minutes costs the server a
 * 304), verifies its signature over the exact bytes when keys are configured, and parses it.
 */
export async function fetchManifest(options: FetchManifestOptions): Promise<FetchedManifest> {
  const { config, store } = options;
  const url = manifestUrlFor(config);
  const cacheKey = `manifest:${url}`;
  const cached = store.kv.get<CachedManifest>(cacheKey);
  const usesApi = !config.server.manifest_url;

  const get = async (): Promise<HttpAnswer> => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (cached) headers['if-none-match'] = cached.etag;
    if (usesApi) headers['x-client-id'] = store.kv.get<string>(CLIENT_ID_KEY) ?? (await registerClient(options));
    return httpRequest(url, { headers, config, signal: options.signal, dispatcher: options.dispatcher });
  };

  let answer = await get();
  if (answer.status === 401 && usesApi) {
    // As nuwax-cli does: the server forgot us; register again and retry once.
    options.logger?.info({ url }, 'server answered 401, registering the client again');
    await registerClient(options);
    answer = await get();
  }
  let bytes: Buffer;
  const notModified = answer.status === 304 && cached !== undefined;
  if (notModified) {
    bytes = Buffer.from(cached.body, 'base64');
  } else if (answer.status === 200) {
    bytes = answer.body;
  } else {
    throw new NuwaxError(ErrorCodes.E_HTTP, `The release server answered HTTP ${answer.status} for ${url}`, {
      details: { statusCode: answer.status, url },
    });
  }

  const signature = await checkSignature(bytes, url, options);
  const manifest = resolvePackageUrls(parseManifest(bytes, `manifest from ${url}`), url);
  const etag = header(answer.headers, 'etag');
  if (!notModified && etag) store.kv.set(cacheKey, { etag, body: bytes.toString('base64') } satisfies CachedManifest);
  const serverDate = header(answer.headers, 'date');
  return {
    manifest,
    url,
    bytes,
    signed: signature !== null,
    ...(signature !== null ? { signature } : {}),
    notModified,
    ...(serverDate ? { serverDate } : {}),
  };
}

/** The signature that verified, or null when no key is configured. */
async function checkSignature(bytes: Buffer, url: string, options: FetchManifestOptions): Promise<string | null> {
  const keys = options.config.security.public_keys;
  if (keys.length === 0) return null;
  const publicKeys = keys.map(loadPublicKey);
  const sigUrl = `${url}.sig`;
  const answer = await httpRequest(sigUrl, {
    config: options.config,
    signal: options.signal,
    dispatcher: options.dispatcher,
  });
  if (answer.status !== 200) {
    throw new NuwaxError(
      ErrorCodes.E_SIGNATURE,
      `The manifest signature ${sigUrl} is missing (HTTP ${answer.status}) and public keys are configured`,
      {
        details: { url: sigUrl, statusCode: answer.status },
      },
    );
  }
  const signature = answer.body.toString('utf8');
  if (!verifySignature(bytes, signature, publicKeys)) {
    throw new NuwaxError(
      ErrorCodes.E_SIGNATURE,
      `The manifest signature does not verify with any configured public key: refusing ${url}`,
      {
        details: { url },
      },
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
