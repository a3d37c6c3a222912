import { constants, type Dirent, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { lstat, mkdir, open, readdir, readlink, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, NuwaxError, throwIfAborted, toNuwaxError } from '../errors/index.js';
import { createProgressReporter, type ProgressListener, type StepName } from '../events/index.js';
import { checkRelativePath, fsyncDirectory, temporaryPathFor } from '../fsutil/index.js';
import { GzipMemberWriter } from './gzip-members.js';
import { END_OF_ARCHIVE, encodeHeader, paddingFor } from './tar-header.js';

export interface CreateOptions {
  /** gzip level 0-9, default 6. */
  level?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  step?: StepName;
  /** A path prefix for every entry inside the archive, e.g. `docker/`. */
  prefix?: string;
  /** Added first, e.g. a metadata file describing the archive. */
  extraEntries?: Array<{ name: string; content: Buffer }>;
  /** File mode of the archive (backups are 0600). */
  mode?: number;
}

export interface CreateResult {
  /** Regular files archived. */
  files: number;
  /** Their bytes, uncompressed. */
  bytes: number;
  /** The archive's size. */
  size: number;
  sha256: string;
  /** Every entry: files, folders, symlinks (not counting extraEntries). */
  entries: number;
  /** Requested paths that did not exist: skipped. */
  missing: string[];
  /** Sockets, fifos and devices: not archived (extraction would refuse them, SPEC 5). */
  skipped: string[];
}

/** Files up to this size are read whole, several at once, ahead of the packer. */
const SMALL_FILE = 256 * 1024;
const READ_AHEAD = 32;
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;

interface Item {
  name: string;
  absolute: string;
  kind: 'file' | 'directory' | 'symlink' | 'other';
  /** For files: opened (never through a symlink) and read ahead of the packer. */
  content?: Promise<{ stats: Stats; data: Buffer | null; handle: FileHandle | null }>;
}

/** Opens without following a symlink; small files are read whole, large ones stay open to stream. */
async function readAhead(absolute: string): Promise<{ stats: Stats; data: Buffer | null; handle: FileHandle | null }> {
  const handle = await open(absolute, constants.O_RDONLY | O_NOFOLLOW);
  try {
    const stats = await handle.stat();
    if (!stats.isFile() || stats.size > SMALL_FILE) return { stats, data: null, handle };
    const data = Buffer.allocUnsafe(stats.size);
    let offset = 0;
    while (offset < data.length) {
      const { bytesRead } = await handle.read(data, offset, data.length - offset, offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
    }
    await handle.close();
    return { stats, data: data.subarray(0, offset), handle: null };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

function kindOf(entry: Dirent | Stats): Item['kind'] {
  if (entry.isFile()) return 'file';
  if (entry.isDirectory()) return 'directory';
  if (entry.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** Depth-first, names sorted: the same tree always gives the same entry order. */
async function* walk(root: string, relative: string, name: string, kind: Item['kind']): AsyncGenerator<Item> {
  const absolute = path.join(root, ...relative.split('/'));
  yield { name, absolute, kind };
  if (kind !== 'directory') return;
  const children = (await readdir(absolute, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  for (const child of children) yield* walk(root, `${relative}/${child.name}`, `${name}/${child.name}`, kindOf(child));
}

class Packer {
  readonly result: CreateResult = { files: 0, bytes: 0, size: 0, sha256: '', entries: 0, missing: [], skipped: [] };
  private readonly report;

  constructor(
    private readonly gzip: GzipMemberWriter,
    private readonly options: CreateOptions,
  ) {
    this.report = createProgressReporter(options.step ?? 'backing_up', null, options.onProgress);
  }

  async add(item: Item): Promise<void> {
    throwIfAborted(this.options.signal);
    if (item.kind === 'other') {
      this.result.skipped.push(item.name);
      return;
    }
    this.result.entries += 1;
    if (item.kind === 'directory' || item.kind === 'symlink') {
      const stats = await lstat(item.absolute);
      const linkname = item.kind === 'symlink' ? await readlink(item.absolute) : undefined;
      await this.gzip.write(
        encodeHeader({
          name: item.name,
          type: item.kind,
          size: 0,
          mode: stats.mode,
          mtime: stats.mtime,
          linkname,
        }),
      );
      return;
    }
    const { stats, data, handle } = await item.content!;
    if (!stats.isFile()) {
      // Replaced by something else since the folder was listed.
      await handle?.close();
      this.result.skipped.push(item.name);
      this.result.entries -= 1;
      return;
    }
    const size = data ? data.length : stats.size;
    try {
      await this.gzip.write(
        encodeHeader({ name: item.name, type: 'file', size, mode: stats.mode, mtime: stats.mtime }),
      );
      if (data) await this.gzip.write(data);
      else await this.stream(handle!, size, item.name);
      await this.gzip.write(END_OF_ARCHIVE.subarray(0, paddingFor(size)));
    } finally {
      await handle?.close();
    }
    this.result.files += 1;
    this.result.bytes += size;
    this.report.update(this.result.bytes, { files: this.result.files });
  }

  /** Exactly `size` bytes: the header already announced them. */
  private async stream(handle: FileHandle, size: number, name: string): Promise<void> {
    const buffer = Buffer.allocUnsafe(1 << 20);
    let offset = 0;
    while (offset < size) {
      throwIfAborted(this.options.signal);
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - offset), offset);
      if (bytesRead === 0)
        throw new NuwaxError(ErrorCodes.E_ARCHIVE, `${name} shrank while it was being archived`, {
          details: { entry: name },
        });
      await this.gzip.write(buffer.subarray(0, bytesRead));
      offset += bytesRead;
      this.report.update(this.result.bytes + offset, { files: this.result.files });
    }
  }

  finish(): void {
    this.report.finish(this.result.bytes, { files: this.result.files });
  }
}

/** Lists and reads ahead while the packer writes: file reads overlap compression and each other. */
async function packPaths(root: string, paths: string[], prefix: string, packer: Packer): Promise<void> {
  const queue: Item[] = [];
  const drain = async (limit: number) => {
    while (queue.length > limit) await packer.add(queue.shift()!);
  };
  try {
    for (const relative of paths) {
      const checked = checkRelativePath(relative, 'archive path');
      const stats = await lstat(path.join(root, ...checked.split('/'))).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return null;
        throw error;
      });
      if (!stats) {
        packer.result.missing.push(relative);
        continue;
      }
      for await (const item of walk(root, checked, `${prefix}${checked}`, kindOf(stats))) {
        if (item.kind === 'file') {
          item.content = readAhead(item.absolute);
          item.content.catch(() => undefined);
        }
        queue.push(item);
        await drain(READ_AHEAD);
      }
    }
    await drain(0);
  } finally {
    // On failure, close what was opened ahead.
    await Promise.allSettled(queue.map(async (item) => (await item.content)?.handle?.close()));
  }
}

/**
 * Streams a tar.gz of `paths` (relative to `root`) into `output`: temp name, fsync, rename.
 * Symlinks are stored as links, never followed; modes and mtimes are kept; missing paths are
 * skipped and reported. The gzip is made of independently compressed members (gzip-members.ts).
 */
export async function createTarGz(
  root: string,
  paths: string[],
  output: string,
  options: CreateOptions = {},
): Promise<CreateResult> {
  await mkdir(path.dirname(output), { recursive: true });
  const temporary = temporaryPathFor(output);
  const handle = await open(temporary, 'wx', options.mode ?? 0o644);
  let closed = false;
  try {
    const gzip = new GzipMemberWriter(handle, options.level ?? 6, options.signal);
    const packer = new Packer(gzip, options);
    const prefix = options.prefix ? `${checkRelativePath(options.prefix, 'archive prefix')}/` : '';
    for (const extra of options.extraEntries ?? []) {
      const name = `${prefix}${checkRelativePath(extra.name, 'archive entry')}`;
      await gzip.write(
        encodeHeader({ name, type: 'file', size: extra.content.length, mode: 0o600, mtime: new Date() }),
      );
      await gzip.write(extra.content);
      await gzip.write(END_OF_ARCHIVE.subarray(0, paddingFor(extra.content.length)));
    }
    await packPaths(path.resolve(root), paths, prefix, packer);
    await gzip.write(END_OF_ARCHIVE);
    const { size, sha256 } = await gzip.end();
    await handle.sync();
    await handle.close();
    closed = true;
    await rename(temporary, output);
    await fsyncDirectory(path.dirname(output));
    packer.finish();
    return { ...packer.result, size, sha256 };
  } catch (error) {
    // The original error is the one to report; a failing close adds nothing to it.
    if (!closed) await handle.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw toNuwaxError(error, ErrorCodes.E_ARCHIVE);
  }
}
