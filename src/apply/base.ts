import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import { throwIfAborted } from '../errors/index.js';
import { checkRelativePath, sha256File } from '../fsutil/index.js';
import { ProtectedPaths } from './protected.js';
import { digestSymlink, kindOf } from './tree.js';
import type { PatchInfo } from './types.js';

export interface BaseMismatch {
  path: string;
  expected: string | null;
  /** The digest on the box, null when absent, 'directory' when a directory stands there. */
  actual: string | null;
}

/** The digest of what the box holds at a path, reached only through real directories. */
async function digestOnBox(dockerDir: string, relative: string, signal?: AbortSignal): Promise<string | null> {
  let current = dockerDir;
  const parts = relative.split('/');
  for (const [index, part] of parts.entries()) {
    current = path.join(current, part);
    const info = await lstat(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return null;
      throw error;
    });
    if (!info) return null;
    const kind = kindOf(info);
    if (index < parts.length - 1) {
      if (kind !== 'directory') return null;
      continue;
    }
    if (kind === 'file') return (await sha256File(current, signal)).sha256;
    if (kind === 'symlink') return digestSymlink(await readlink(current));
    return kind;
  }
  return null;
}

/**
 * Compares the box with the base a patch was made from (`.nuwax/patch.json`): a file edited by
 * hand makes the upgrade fall back to the full package (SPEC 6, issue: base check). Paths under a
 * protected path are the box's own business and are not compared.
 */
export async function checkPatchBase(
  dockerDir: string,
  patchInfo: PatchInfo,
  options: { protectedPaths?: string[]; signal?: AbortSignal } = {},
): Promise<{ ok: boolean; mismatches: BaseMismatch[] }> {
  const protectedPaths = new ProtectedPaths(options.protectedPaths ?? []);
  const mismatches: BaseMismatch[] = [];
  for (const [entry, expected] of Object.entries(patchInfo.base ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    throwIfAborted(options.signal);
    const relative = checkRelativePath(entry, 'base path');
    if (protectedPaths.covers(relative)) continue;
    const actual = await digestOnBox(path.resolve(dockerDir), relative, options.signal);
    if (actual !== expected) mismatches.push({ path: relative, expected, actual });
  }
  return { ok: mismatches.length === 0, mismatches };
}
