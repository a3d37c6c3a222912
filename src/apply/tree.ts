import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { throwIfAborted } from '../errors/index.js';

export type EntryKind = 'directory' | 'file' | 'symlink' | 'other';

export interface TreeEntry {
  kind: EntryKind;
  /** Permission bits (0o7777). */
  mode: number;
  size: number;
  /** Content digest of a file or a symlink (see digestSymlink); absent for directories. */
  digest?: string;
  target?: string;
}

/** sha256 of a file, streamed (memory flat whatever the size). */
export async function hashFile(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hash, signal ? { signal } : {});
  return hash.digest('hex');
}

/**
 * A symlink's digest in a patch base: the hash of its target text, prefixed so that it never
 * equals the digest of a regular file holding the same bytes.
 */
export function digestSymlink(target: string): string {
  return createHash('sha256').update(`symlink\0${target}`).digest('hex');
}

export function kindOf(info: { isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean }): EntryKind {
  if (info.isSymbolicLink()) return 'symlink';
  if (info.isDirectory()) return 'directory';
  if (info.isFile()) return 'file';
  return 'other';
}

/**
 * Every entry under `root` by relative POSIX path, symlinks not followed, files hashed. Used by
 * `release patch` to compare two trees by content.
 */
export async function scanTree(root: string, options: { signal?: AbortSignal; hash?: boolean } = {}): Promise<Map<string, TreeEntry>> {
  const entries = new Map<string, TreeEntry>();
  const walk = async (relative: string): Promise<void> => {
    const absolute = relative === '' ? root : path.join(root, ...relative.split('/'));
    for (const name of (await readdir(absolute)).sort()) {
      throwIfAborted(options.signal);
      const child = relative === '' ? name : `${relative}/${name}`;
      const full = path.join(absolute, name);
      const info = await lstat(full);
      const entry: TreeEntry = { kind: kindOf(info), mode: info.mode & 0o7777, size: info.isFile() ? info.size : 0 };
      if (entry.kind === 'symlink') {
        entry.target = await readlink(full);
        entry.digest = digestSymlink(entry.target);
      } else if (entry.kind === 'file' && options.hash !== false) {
        entry.digest = await hashFile(full, options.signal);
      }
      entries.set(child, entry);
      if (entry.kind === 'directory') await walk(child);
    }
  };
  await walk('');
  return entries;
}
