import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, type Dir } from 'node:fs';
import { lstat, mkdir, open, opendir, rename, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
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

/** The errno code of a failed system call (`ENOENT`, `EACCES`, ...), or undefined for any other error. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * For `.catch(...)` on a call about a path: `value` when the path is not there (ENOENT, plus the
 * codes given, such as ENOTDIR when a parent is a file); any other failure (EACCES, EIO) is rethrown.
 */
export function whenAbsent<T>(value: T, ...alsoAbsent: string[]): (error: unknown) => T {
  return (error: unknown) => {
    const code = errnoOf(error);
    if (code === 'ENOENT' || (code !== undefined && alsoAbsent.includes(code))) return value;
    throw error;
  };
}

/** Whether an entry is at `file` (a symlink counts, dangling or not); only ENOENT means absent. */
export async function exists(file: string): Promise<boolean> {
  return lstat(file).then(() => true, whenAbsent(false));
}

/** SHA-256 (lower-case hex) and byte count of a file, streamed: memory stays flat whatever the size. */
export async function sha256File(file: string, signal?: AbortSignal): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    createReadStream(file, { highWaterMark: 1 << 20 }),
    async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) {
        hash.update(chunk);
        size += chunk.length;
      }
    },
    { signal },
  );
  return { sha256: hash.digest('hex'), size };
}

/** lstat calls in flight while a tree is sized. */
const SIZE_BATCH = 64;

/**
 * Bytes under `target`, links not followed (a link counts its own size), absent counts 0.
 * Depth-first through opendir: only the folders on the way down are open and at most SIZE_BATCH
 * names wait for their lstat, so memory stays flat whatever the number of files
 * (scripts/bench/README.md, backup).
 */
export async function treeSize(target: string): Promise<number> {
  const top = await lstat(target).catch(whenAbsent(null));
  if (!top) return 0;
  if (!top.isDirectory()) return top.size;
  let total = 0;
  const sizeOf = async (file: string) => {
    const info = await lstat(file).catch(whenAbsent(null));
    total += info?.size ?? 0;
  };
  const stack: Dir[] = [await opendir(target, { bufferSize: 128 })];
  try {
    while (stack.length > 0) {
      const dir = stack.at(-1)!;
      const batch: string[] = [];
      let entry = await dir.read();
      // A batch of names, cut short by a subfolder: it is walked before this folder goes on.
      while (entry !== null) {
        const child = path.join(dir.path, entry.name);
        if (entry.isDirectory()) {
          const opened = await opendir(child, { bufferSize: 128 }).catch(whenAbsent(null, 'ENOTDIR'));
          if (opened) {
            stack.push(opened);
            break;
          }
        } else {
          batch.push(child);
          if (batch.length === SIZE_BATCH) break;
        }
        entry = await dir.read();
      }
      await Promise.all(batch.map(sizeOf));
      if (entry === null) await stack.pop()!.close();
    }
  } finally {
    await Promise.allSettled(stack.map((dir) => dir.close()));
  }
  return total;
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
      if (errnoOf(error) !== 'ENOENT' || parent === current) throw error;
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
      `Not enough disk space for ${what}: ${formatBytes(needed)} needed, ` +
        `${formatBytes(free)} free in ${directory}`,
      { details: { needed, free, directory } },
    );
  }
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `27.0 MiB`; whole bytes below 1 KiB; a negative count says `0 B`. The same output as tui's formatBytes. */
export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${BYTE_UNITS[unit]}`;
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
