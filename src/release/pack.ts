import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { PatchOperations } from '../apply/index.js';
import { createTarGz } from '../archive/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import type { ProgressListener } from '../events/index.js';
import { whenAbsent, writeFileAtomic } from '../fsutil/index.js';
import { isValidVersion } from '../manifest/index.js';
import type { ReleaseSidecar } from './manifest.js';

export type ReleaseArch = 'x86_64' | 'aarch64';

export interface PackageSidecar extends ReleaseSidecar {
  operations?: PatchOperations;
  size: number;
  sha256: string;
}

export function checkReleaseArguments(versions: string[], arch: string): asserts arch is ReleaseArch {
  for (const version of versions) {
    if (!isValidVersion(version))
      throw new NuwaxError(ErrorCodes.E_USAGE, `"${version}" is not a version like 1.4.0, 1.4.0.2 or 1.5.0-rc.1`);
  }
  if (arch !== 'x86_64' && arch !== 'aarch64')
    throw new NuwaxError(ErrorCodes.E_USAGE, `The arch must be x86_64 or aarch64, not "${arch}"`);
}

export async function checkDirectory(directory: string, what: string): Promise<void> {
  const info = await stat(directory).catch(whenAbsent(null, 'ENOTDIR'));
  if (!info?.isDirectory()) throw new NuwaxError(ErrorCodes.E_USAGE, `${what} ${directory} is not a directory`);
}

/** `<FILE>.release.json`, read by `release manifest` (src/release/manifest.ts). */
export async function writeSidecar(output: string, sidecar: PackageSidecar): Promise<void> {
  await writeFileAtomic(`${output}.release.json`, `${JSON.stringify(sidecar, null, 2)}\n`);
}

export interface PackOptions {
  dir: string;
  version: string;
  arch: string;
  output: string;
  level?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

/**
 * `release pack` (SPEC 5): a full package of a deployment folder, its entries without a
 * `docker/` prefix, and its sidecar. Symlinks are stored as links; modes are kept.
 */
export async function packRelease(options: PackOptions): Promise<PackageSidecar> {
  checkReleaseArguments([options.version], options.arch);
  const dir = path.resolve(options.dir);
  const output = path.resolve(options.output);
  await checkDirectory(dir, 'The deployment folder');
  if (output.startsWith(dir + path.sep))
    throw new NuwaxError(ErrorCodes.E_USAGE, `The package ${output} would be written inside the folder it packs`);
  const entries = (await readdir(dir)).sort();
  const created = await createTarGz(dir, entries, output, {
    step: 'staging',
    level: options.level,
    signal: options.signal,
    onProgress: options.onProgress,
  });
  const sidecar: PackageSidecar = {
    kind: 'full',
    version: options.version,
    arch: options.arch,
    size: created.size,
    sha256: created.sha256,
  };
  await writeSidecar(output, sidecar);
  return sidecar;
}
