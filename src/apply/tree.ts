import { createHash } from 'node:crypto';
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { throwIfAborted } from '../errors/index.js';
import { sha256File } from '../fsutil/index.js';

export type EntryKind = 'directory' | 'file' | 'symlink' | 'other';

export interface TreeEntry {
  kind: EntryKind;
  /** Permission bits (0o7777). */
  mode: number;
  size: number;
  /** Content digest of a file or a symlink (see digestSymlink); absent for directories. */
  digest?: string;
  target?: string;
  /** Modification time, with `times: true` only (a tree's identity, not its content). */
  mtimeMs?: number;
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
export async function scanTree(
  root: string,
  options: { signal?: AbortSignal; hash?: boolean; times?: boolean } = {},
): Promise<Map<string, TreeEntry>> {
  const entries = new Map<string, TreeEntry>();
  const walk = async (relative: string): Promise<void> => {
    const absolute = relative === '' ? root : path.join(root, ...relative.split('/'));
    for (const name of (await readdir(absolute)).sort()) {
      throwIfAborted(options.signal);
      const child = relative === '' ? name : `${relative}/${name}`;
      const full = path.join(absolute, name);
      const info = await lstat(full);
      const entry: TreeEntry = {
        kind: kindOf(info),
        mode: info.mode & 0o7777,
        size: info.isFile() ? info.size : 0,
      };
      if (options.times) entry.mtimeMs = info.mtimeMs;
      if (entry.kind === 'symlink') {
        entry.target = await readlink(full);
        entry.digest = digestSymlink(entry.target);
      } else if (entry.kind === 'file' && options.hash !== false) {
        entry.digest = (await sha256File(full, options.signal)).sha256;
      }
      entries.set(child, entry);
      if (entry.kind === 'directory') await walk(child);
    }
  };
  await walk('');
  return entries;
}

/**
 * Kinds of entries under a root, read by listing each parent once (d_type, like lstat never
 * follows the entry itself): planning a patch of thousands of files asks about the same
 * folders again and again, and one readdir beats an lstat per file.
 */
export class KindCache {
  private readonly listings = new Map<string, Map<string, EntryKind> | null>();
  private rootKind: EntryKind | 'none' | undefined;

  constructor(readonly root: string) {}

  absolute(relative: string): string {
    return relative === '' ? this.root : path.join(this.root, ...relative.split('/'));
  }

  /** The kind at a path, symlinks not followed; 'none' when absent. */
  async kind(relative: string): Promise<EntryKind | 'none'> {
    if (relative === '') {
      this.rootKind ??= await lstat(this.root).then(kindOf, (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return 'none' as const;
        throw error;
      });
      return this.rootKind;
    }
    const index = relative.lastIndexOf('/');
    const listing = await this.listing(index === -1 ? '' : relative.slice(0, index));
    return listing?.get(index === -1 ? relative : relative.slice(index + 1)) ?? 'none';
  }

  /** The kind at a path reached only through real directories: 'none' behind a file or a symlink. */
  async kindThroughDirectories(relative: string): Promise<EntryKind | 'none'> {
    const index = relative.lastIndexOf('/');
    if (index !== -1 && (await this.kindThroughDirectories(relative.slice(0, index))) !== 'directory') return 'none';
    return this.kind(relative);
  }

  private async listing(directory: string): Promise<Map<string, EntryKind> | null> {
    let listing = this.listings.get(directory);
    if (listing !== undefined) return listing;
    try {
      const entries = await readdir(this.absolute(directory), { withFileTypes: true });
      listing = new Map();
      for (const entry of entries) {
        const known = entry.isFile() || entry.isDirectory() || entry.isSymbolicLink();
        // Some filesystems report no type (DT_UNKNOWN): ask lstat for those.
        const kind =
          known || isSpecial(entry)
            ? kindOf(entry)
            : kindOf(await lstat(path.join(this.absolute(directory), entry.name)));
        listing.set(entry.name, kind);
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
      listing = null;
    }
    this.listings.set(directory, listing);
    return listing;
  }
}

function isSpecial(entry: {
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
}): boolean {
  return entry.isFIFO() || entry.isSocket() || entry.isCharacterDevice() || entry.isBlockDevice();
}
