import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, rename, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, NuwaxError } from '../errors/index.js';

/** fsync a directory so a rename inside it survives power loss. Not possible on Windows: skipped there. */
export async function fsyncDirectory(directory: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Temp name in the same folder, so the final rename is atomic on the same filesystem. */
export function temporaryPathFor(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
}

/** Durable atomic write: temp file, write, fsync, rename, fsync the folder (STYLE: files on disk). */
export async function writeFileAtomic(target: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true });
  const temporary = temporaryPathFor(target);
  const handle = await open(temporary, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temporary, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  await fsyncDirectory(path.dirname(target));
}

/** Moves a finished temp file into place durably. */
export async function commitFile(temporary: string, target: string): Promise<void> {
  await fsyncFile(temporary);
  await rename(temporary, target);
  await fsyncDirectory(path.dirname(target));
}

export async function exists(file: string): Promise<boolean> {
  try {
    await access(file, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

/** Free bytes for an unprivileged writer on the filesystem holding `directory` (or its nearest existing parent). */
export async function freeBytes(directory: string): Promise<number> {
  let current = path.resolve(directory);
  for (;;) {
    try {
      const stats = await statfs(current);
      return Number(stats.bavail) * Number(stats.bsize);
    } catch (error) {
      const parent = path.dirname(current);
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === current) throw error;
      current = parent;
    }
  }
}

/** Fails with E_DISK_FULL, with the figures, when `needed` bytes do not fit. */
export async function ensureFreeSpace(directory: string, needed: number, what: string): Promise<void> {
  const free = await freeBytes(directory);
  if (free < needed) {
    throw new NuwaxError(
      ErrorCodes.E_DISK_FULL,
      `Not enough disk space for ${what}: ${formatBytes(needed)} needed, ${formatBytes(free)} free in ${directory}`,
      { details: { needed, free, directory } },
    );
  }
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/**
 * Validates a relative path from a manifest or archive (SPEC 4: absolute paths, `..`, drive letters
 * and NUL are refused). Returns the normalised POSIX form, without a trailing slash.
 */
export function checkRelativePath(candidate: string, what = 'path'): string {
  const fail = (why: string): never => {
    throw new NuwaxError(ErrorCodes.E_UNSAFE_PATH, `Unsafe ${what} "${candidate}": ${why}`, {
      details: { path: candidate },
    });
  };
  if (typeof candidate !== 'string' || candidate.length === 0) fail('empty');
  if (candidate.includes('\0')) fail('contains NUL');
  const slashed = candidate.replace(/\\/g, '/');
  if (slashed.startsWith('/')) fail('absolute path');
  if (/^[a-zA-Z]:/.test(slashed)) fail('drive letter');
  const parts = slashed.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.some((part) => part === '..')) fail('contains ".."');
  if (parts.length === 0) fail('names the root');
  return parts.join('/');
}

/** Resolves a checked relative path under a root, guaranteeing the result stays inside it. */
export function resolveInside(root: string, relative: string, what = 'path'): string {
  const clean = checkRelativePath(relative, what);
  const resolved = path.resolve(root, ...clean.split('/'));
  const rootResolved = path.resolve(root);
  if (resolved !== rootResolved && !resolved.startsWith(rootResolved + path.sep)) {
    throw new NuwaxError(ErrorCodes.E_UNSAFE_PATH, `Unsafe ${what} "${relative}": escapes ${root}`);
  }
  return resolved;
}
