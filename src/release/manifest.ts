import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { sha256File, writeFileAtomic } from '../fsutil/index.js';
import { generateKeyPair, loadPrivateKey, parseManifest, signBytes } from '../manifest/index.js';

/** Written beside every package by `release pack`/`release patch` (`<file>.release.json`). */
export interface ReleaseSidecar {
  kind: 'full' | 'patch';
  version: string;
  arch: 'x86_64' | 'aarch64';
  from?: string[];
  operations?: unknown;
  size?: number;
  sha256?: string;
}

async function readSidecar(file: string): Promise<ReleaseSidecar | undefined> {
  try {
    return JSON.parse(await readFile(`${file}.release.json`, 'utf8')) as ReleaseSidecar;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new NuwaxError(ErrorCodes.E_USAGE, `Cannot read ${file}.release.json: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

export interface BuildManifestOptions {
  version: string;
  packages: string[];
  notes?: string;
  baseUrl?: string;
  /** Arch for packages without a sidecar (they are full packages). */
  arch?: 'x86_64' | 'aarch64';
  expires?: Date;
  minClient?: string;
  mirrors?: string[];
  now?: Date;
}

/** Builds a manifest (SPEC 4) from package files: computes sha256 and size, reads the sidecars. */
export async function buildManifest(options: BuildManifestOptions): Promise<Record<string, unknown>> {
  const platforms: Record<string, unknown> = {};
  const patch: Record<string, unknown> = {};
  let legacyFull: Record<string, unknown> | undefined;
  for (const file of options.packages) {
    const sidecar = (await readSidecar(file)) ?? {
      kind: 'full',
      version: options.version,
      arch: options.arch ?? 'x86_64',
    };
    if (sidecar.version !== options.version) {
      throw new NuwaxError(ErrorCodes.E_USAGE, `${file} was built for ${sidecar.version}, not ${options.version}`);
    }
    const { sha256, size } = await sha256File(file);
    const name = path.basename(file);
    const url = options.baseUrl
      ? new URL(name, options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`).toString()
      : name;
    const ref = { url, hash: `sha256:${sha256}`, signature: '', size };
    if (sidecar.kind === 'patch') {
      patch[sidecar.arch] = { ...ref, from: sidecar.from, operations: sidecar.operations ?? {} };
    } else {
      platforms[sidecar.arch] = ref;
      legacyFull ??= ref;
    }
  }
  const manifest: Record<string, unknown> = {
    version: options.version,
    release_date: (options.now ?? new Date()).toISOString(),
    release_notes: options.notes ?? '',
  };
  // nuwax-cli reads packages.full; newer clients prefer platforms.<arch>.
  if (legacyFull) manifest.packages = { full: legacyFull };
  if (Object.keys(platforms).length > 0) manifest.platforms = platforms;
  if (Object.keys(patch).length > 0) manifest.patch = patch;
  if (options.mirrors?.length) manifest.mirrors = options.mirrors;
  if (options.expires) manifest.expires = options.expires.toISOString();
  if (options.minClient) manifest.min_client = options.minClient;
  parseManifest(JSON.stringify(manifest), 'built manifest');
  return manifest;
}

export async function writeManifest(manifest: Record<string, unknown>, output: string): Promise<void> {
  await writeFileAtomic(output, `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Signs the exact bytes of a manifest file into `<file>.sig` (SPEC 4). */
export async function signManifestFile(file: string, privateKeyFile: string, output = `${file}.sig`): Promise<string> {
  const key = loadPrivateKey(await readFile(privateKeyFile, 'utf8'));
  const bytes = await readFile(file);
  parseManifest(bytes, file);
  const signature = signBytes(bytes, key);
  await writeFileAtomic(output, `${signature}\n`);
  return output;
}

/** Writes `<prefix>.key` (private, 0600) and `<prefix>.pub` (base64 raw key, for config.toml). */
export async function writeKeyPair(
  prefix: string,
): Promise<{ publicKey: string; privateKeyFile: string; publicKeyFile: string }> {
  const { publicKey, privateKeyPem } = generateKeyPair();
  const privateKeyFile = `${prefix}.key`;
  const publicKeyFile = `${prefix}.pub`;
  await writeFile(privateKeyFile, privateKeyPem, { mode: 0o600, flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EEXIST')
      throw new NuwaxError(ErrorCodes.E_USAGE, `${privateKeyFile} exists already; refusing to overwrite a signing key`);
    throw error;
  });
  await writeFileAtomic(publicKeyFile, `${publicKey}\n`);
  return { publicKey, privateKeyFile, publicKeyFile };
}
