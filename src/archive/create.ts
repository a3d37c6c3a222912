import {
  closeSync,
  constants,
  type Dirent,
  fstatSync,
  lstatSync,
  opendirSync,
  openSync,
  readlinkSync,
  type Stats,
} from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, NuwaxError, throwIfAborted, toNuwaxError } from '../errors/index.js';
import { createProgressReporter, type ProgressListener, type StepName } from '../events/index.js';
import { checkRelativePath, fsyncDirectory, temporaryPathFor } from '../fsutil/index.js';
import { GzipMemberWriter } from './gzip-members.js';
import { BLOCK, END_OF_ARCHIVE, encodeHeader, paddingFor } from './tar-header.js';

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

/**
 * Folders of up to this many entries are archived in name order (the same tree gives the same
 * archive); larger ones in the directory's own order, as GNU tar does, so that memory does not
 * grow with the size of a folder.
 */
const SORTED_FOLDER = 4096;
// O_NONBLOCK: a file replaced by a fifo since it was listed must not block the open.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

interface Item {
  name: string;
  absolute: string;
  kind: 'file' | 'directory' | 'symlink' | 'other';
}

function kindOf(entry: Dirent | Stats): Item['kind'] {
  if (entry.isFile()) return 'file';
  if (entry.isDirectory()) return 'directory';
  if (entry.isSymbolicLink()) return 'symlink';
  return 'other';
}

const byName = (a: Dirent, b: Dirent) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** A folder's entries, read a batch at a time (opendir), never all at once beyond SORTED_FOLDER. */
function* entriesOf(absolute: string): Generator<Dirent> {
  const dir = opendirSync(absolute, { bufferSize: 128 });
  let open = true;
  try {
    const first: Dirent[] = [];
    let entry = dir.readSync();
    while (entry !== null && first.length < SORTED_FOLDER) {
      first.push(entry);
      entry = dir.readSync();
    }
    if (entry === null) {
      // Read to its end: closed before its subfolders are walked.
      dir.closeSync();
      open = false;
      yield* first.sort(byName);
      return;
    }
    yield* first;
    while (entry !== null) {
      yield entry;
      entry = dir.readSync();
    }
  } finally {
    if (open) dir.closeSync();
  }
}

/** Depth-first; only the folders on the way down are open: memory does not grow with the tree. */
function* walk(absolute: string, name: string, kind: Item['kind']): Generator<Item> {
  yield { name, absolute, kind };
  if (kind !== 'directory') return;
  for (const child of entriesOf(absolute))
    yield* walk(`${absolute}${path.sep}${child.name}`, `${name}/${child.name}`, kindOf(child));
}

class Packer {
  readonly result: CreateResult = { files: 0, bytes: 0, size: 0, sha256: '', entries: 0, missing: [], skipped: [] };
  private readonly report;
  /** The header block, reused for every entry without pax records. */
  private readonly header = Buffer.alloc(BLOCK);

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
    if (item.kind === 'file') return this.addFile(item);
    this.result.entries += 1;
    const stats = lstatSync(item.absolute);
    const linkname = item.kind === 'symlink' ? readlinkSync(item.absolute) : undefined;
    const header = { name: item.name, type: item.kind, size: 0, mode: stats.mode, mtime: stats.mtimeMs, linkname };
    await this.gzip.write(encodeHeader(header, this.header));
  }

  /**
   * Opened without following a symlink, then read straight into the gzip blocks. Synchronous
   * calls: four per small file, each cheaper than a round trip through the threadpool.
   */
  private async addFile(item: Item): Promise<void> {
    const fd = openSync(item.absolute, OPEN_FLAGS);
    try {
      const stats = fstatSync(fd);
      if (!stats.isFile()) {
        // Replaced by something else since the folder was listed.
        this.result.skipped.push(item.name);
        return;
      }
      const size = stats.size;
      await this.gzip.write(
        encodeHeader({ name: item.name, type: 'file', size, mode: stats.mode, mtime: stats.mtimeMs }, this.header),
      );
      await this.copy(fd, size, item.name);
      await this.gzip.write(END_OF_ARCHIVE.subarray(0, paddingFor(size)));
      this.result.entries += 1;
      this.result.files += 1;
      this.result.bytes += size;
      this.report.update(this.result.bytes, { files: this.result.files });
    } finally {
      closeSync(fd);
    }
  }

  /** Exactly `size` bytes: the header already announced them. */
  private async copy(fd: number, size: number, name: string): Promise<void> {
    let offset = 0;
    while (offset < size) {
      throwIfAborted(this.options.signal);
      const bytesRead = await this.gzip.read(fd, offset, size - offset);
      if (bytesRead === 0)
        throw new NuwaxError(ErrorCodes.E_ARCHIVE, `${name} shrank while it was being archived`, {
          details: { entry: name },
        });
      offset += bytesRead;
      if (offset < size) this.report.update(this.result.bytes + offset, { files: this.result.files });
    }
  }

  finish(): void {
    this.report.finish(this.result.bytes, { files: this.result.files });
  }
}

/** One entry at a time, in walk order: the walk, the reads and the compression queue are all bounded. */
async function packPaths(root: string, paths: string[], prefix: string, packer: Packer): Promise<void> {
  for (const relative of paths) {
    const checked = checkRelativePath(relative, 'archive path');
    const absolute = path.join(root, ...checked.split('/'));
    const stats = lstatSync(absolute, { throwIfNoEntry: false });
    if (!stats) {
      packer.result.missing.push(relative);
      continue;
    }
    for (const item of walk(absolute, `${prefix}${checked}`, kindOf(stats))) await packer.add(item);
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
