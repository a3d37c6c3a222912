import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type Dispatcher, request } from '../http/index.js';
import { z } from 'zod';
import type { Config } from '../config/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { isValidVersion } from '../versions/index.js';
import { type MinisignSigner, signMinisignFile } from './minisign.js';

/**
 * nuwax's client releases, in the Tauri updater's format (nuwax-cli's check_update.rs):
 * `{"version","notes","pub_date","platforms":{"linux-x86_64":{"url","signature"},…}}`. `sha256`
 * per platform is our addition; readers that do not know it ignore it.
 */
const platformSchema = z.looseObject({
  url: z.string().min(1),
  signature: z.string().default(''),
  sha256: z
    .string()
    .regex(/^(sha256:)?[0-9a-fA-F]{64}$/)
    .optional(),
  size: z.number().int().min(0).optional(),
});

const clientManifestSchema = z.looseObject({
  version: z.string().refine((value) => isValidVersion(value), 'a version (M.m.p, M.m.p.b or semver)'),
  notes: z.string().nullish(),
  pub_date: z.string().nullish(),
  platforms: z.record(z.string(), platformSchema),
});

export interface ClientPlatform {
  url: string;
  /** minisign's .sig file, base64 (Tauri) */
  signature: string;
  sha256: string | undefined;
  size: number | undefined;
}

export interface ClientRelease {
  version: string;
  notes: string | undefined;
  pubDate: string | undefined;
  /** This box's platform, or undefined when the release has none for it. */
  platform: ClientPlatform | undefined;
  platformKey: string;
}

/** `linux-x86_64` / `linux-aarch64` (Tauri's target-arch keys). */
export function platformKey(arch: string = process.arch): string {
  const name = { x64: 'x86_64', arm64: 'aarch64' }[arch];
  if (!name) throw new NuwaxError(ErrorCodes.E_UNSUPPORTED_ARCH, `No nuwax client is built for ${arch}`);
  return `linux-${name}`;
}

export function parseClientManifest(text: string, baseUrl: string, key = platformKey()): ClientRelease {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new NuwaxError(ErrorCodes.E_MANIFEST, 'The client release manifest is not JSON', { cause: error });
  }
  const parsed = clientManifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new NuwaxError(
      ErrorCodes.E_MANIFEST,
      `The client release manifest is invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
    );
  }
  const entry = parsed.data.platforms[key];
  return {
    version: parsed.data.version.replace(/^v/, ''),
    notes: parsed.data.notes ?? undefined,
    pubDate: parsed.data.pub_date ?? undefined,
    platformKey: key,
    platform: entry
      ? {
          url: new URL(entry.url, baseUrl).toString(),
          signature: entry.signature,
          sha256: entry.sha256?.replace(/^sha256:/, '').toLowerCase(),
          size: entry.size,
        }
      : undefined,
  };
}

/** `[server] client_manifest_url`, else `{base_url}/api/v1/cli/versions/latest.json`; none without a server. */
export function clientManifestUrl(config: Config): string | undefined {
  const { server } = config;
  if (server.client_manifest_url) return server.client_manifest_url;
  if (server.base_url) return new URL('/api/v1/cli/versions/latest.json', server.base_url).toString();
  return undefined;
}

export async function fetchClientManifest(
  url: string,
  options: { dispatcher?: Dispatcher; timeoutMs: number; signal?: AbortSignal },
): Promise<ClientRelease> {
  let response: Dispatcher.ResponseData;
  try {
    response = await request(url, {
      dispatcher: options.dispatcher,
      signal: options.signal,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
  } catch (error) {
    throw new NuwaxError(ErrorCodes.E_NETWORK, `Cannot reach ${url} for the client release`, { cause: error });
  }
  const text = await response.body.text();
  if (response.statusCode !== 200) {
    throw new NuwaxError(ErrorCodes.E_HTTP, `${url} answered ${response.statusCode} for the client release`, {
      details: { status: response.statusCode },
    });
  }
  return parseClientManifest(text, url);
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** `nuwax-<version>-linux-<arch>.tar.gz` → `linux-<arch>`. */
function platformOfArchive(file: string): string {
  const match = /-(linux-(?:x86_64|aarch64))\.tar\.gz$/.exec(path.basename(file));
  if (!match) {
    throw new NuwaxError(ErrorCodes.E_USAGE, `${file}: not a client archive (nuwax-<version>-linux-<arch>.tar.gz)`);
  }
  return match[1]!;
}

/**
 * The latest.json of a client release. Each archive's signature is its `<archive>.sig` or
 * `.minisig` (from `minisign -S`) when present, else one made with `signer`; its URL is `urlBase` + its name.
 */
export async function writeClientManifest(options: {
  version: string;
  notes?: string;
  archives: string[];
  urlBase: string;
  signer?: MinisignSigner;
  now?: Date;
}): Promise<string> {
  const platforms: Record<string, Record<string, unknown>> = {};
  for (const archive of options.archives) {
    let signature = (await readIfPresent(`${archive}.sig`)) ?? (await readIfPresent(`${archive}.minisig`));
    if (signature === undefined) {
      if (!options.signer) {
        throw new NuwaxError(ErrorCodes.E_USAGE, `${archive}: no .sig or .minisig beside it and no signing key (-k)`);
      }
      const seconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
      const comment = `timestamp:${seconds}\tfile:${path.basename(archive)}`;
      signature = await signMinisignFile(archive, options.signer, comment);
    }
    platforms[platformOfArchive(archive)] = {
      url: `${options.urlBase.replace(/\/+$/, '')}/${path.basename(archive)}`,
      signature: Buffer.from(signature, 'utf8').toString('base64'),
      sha256: await sha256Of(archive),
      size: (await stat(archive)).size,
    };
  }
  const manifest = {
    version: options.version,
    notes: options.notes ?? '',
    pub_date: (options.now ?? new Date()).toISOString(),
    platforms,
  };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
