import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { chmod, link, lstat, mkdir, open, readlink, symlink, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, NuwaxError, throwIfAborted } from '../errors/index.js';
import { createProgressReporter, type ProgressListener, type StepName } from '../events/index.js';
import { checkRelativePath, formatBytes, whenAbsent } from '../fsutil/index.js';
import type { BoundOptions, ExtractionBound } from './bound.js';

export interface ExtractOptions extends BoundOptions {
  signal?: AbortSignal;
  /** e.g. `docker/`: stripped when every entry starts with it (SPEC 5). */
  stripPrefix?: string;
  /** A bound per entry (default 16 GiB); a larger entry is E_ARCHIVE. */
  maxEntryBytes?: number;
  onProgress?: ProgressListener;
  step?: StepName;
  /** Small files written at once (default 16). */
  concurrency?: number;
  /** Expected sha256 of the archive file, checked in the same read pass (E_HASH_MISMATCH). */
  sha256?: string;
}

export interface ExtractResult {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  /** sha256 of the archive file as read (tar and tar.gz). */
  sha256: string | null;
}

export type EntryKind = 'file' | 'directory' | 'symlink' | 'link' | 'other';

export interface EntryFacts {
  size: number;
  mode: number;
  mtime: Date;
  linkname?: string;
}

/** Files up to this size are buffered and written several at once. */
export const SMALL_FILE = 256 * 1024;
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW;
// Read once: modes are restored exactly, so a file whose mode the umask would narrow gets a chmod.
const UMASK = process.platform === 'win32' ? 0 : process.umask();
const MAX_LINK_HOPS = 40;

async function whole(content: Promise<Buffer> | AsyncIterable<Buffer> | null): Promise<Buffer> {
  if (content === null) return Buffer.alloc(0);
  if (content instanceof Promise) return content;
  const chunks: Buffer[] = [];
  for await (const chunk of content) chunks.push(chunk);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

async function* toPieces(content: Promise<Buffer> | null): AsyncGenerator<Buffer> {
  if (content) yield await content;
}

function kindOf(existing: { isSymbolicLink(): boolean; isDirectory(): boolean }): string {
  if (existing.isSymbolicLink()) return 'symlink';
  return existing.isDirectory() ? 'folder' : 'special file';
}

function unsafe(rawName: string, why: string): NuwaxError {
  return new NuwaxError(ErrorCodes.E_UNSAFE_PATH, `Archive entry "${rawName}" ${why}: refused`, {
    details: { entry: rawName },
  });
}

/**
 * Decides per entry and refuses rather than sanitises (tar-fs as the model, SPEC 5): no absolute
 * paths, no `..`, no device files, no link pointing outside, and never a write through a link the
 * archive made: every parent is checked to be a real directory (lstat, then remembered), files are
 * created with O_EXCL|O_NOFOLLOW, hard links only to files this extraction wrote.
 */
export class SafeWriter {
  readonly result: ExtractResult = { files: 0, directories: 0, symlinks: 0, bytes: 0, sha256: null };
  private readonly root: string;
  /** Real directories inside the root, checked or made by this extraction. */
  private readonly directories = new Set<string>();
  /** Writes still running, by path: bounded by the concurrency, not by the number of entries. */
  private readonly pending = new Map<string, Promise<void>>();
  /** Regular files this extraction wrote (hard links may point only at them), relative to the root. */
  private readonly written = new Set<string>();
  private readonly links: Array<[string, string]> = [];
  private readonly directoryFacts: Array<[string, Date, number]> = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown = null;
  private prefix: string | undefined;
  private readonly report: ReturnType<typeof createProgressReporter>;

  constructor(
    destination: string,
    private readonly options: ExtractOptions,
    private readonly bound: ExtractionBound = { bytes: 64 * 1024 ** 3, describe: 'the 64 GiB bound on an extraction' },
  ) {
    this.root = path.resolve(destination);
    this.directories.add(this.root);
    this.report = createProgressReporter(options.step ?? 'staging', null, options.onProgress);
  }

  /** An archive name as a checked path relative to the root; null for the stripped prefix itself. */
  private relativeOf(rawName: string): string | null {
    let name = rawName.replace(/\\/g, '/');
    const strip = this.options.stripPrefix?.replace(/\/?$/, '/');
    if (strip) {
      const clean = name.replace(/^(\.\/)+/, '');
      // Decided on the first entry: the prefix is stripped only when every entry has it.
      this.prefix ??= clean.startsWith(strip) || clean === strip.slice(0, -1) ? strip : '';
      if (this.prefix) {
        if (clean === strip || clean === strip.slice(0, -1)) return null;
        if (!clean.startsWith(strip))
          throw new NuwaxError(
            ErrorCodes.E_ARCHIVE,
            `Entry "${rawName}" is outside ${strip} while others are inside it`,
            { details: { entry: rawName } },
          );
        name = clean.slice(strip.length);
      }
    }
    if (name.replace(/^(\.\/)+/, '').replace(/^\.$/, '') === '') return null;
    return checkRelativePath(name, 'archive entry');
  }

  private absoluteOf(relative: string): string {
    return path.join(this.root, ...relative.split('/'));
  }

  /** Every parent must be a real directory: refuses a write "through" a symlink entry. */
  private async prepareParent(absolute: string, rawName: string): Promise<void> {
    const parent = path.dirname(absolute);
    if (this.directories.has(parent)) return;
    await this.prepareParent(parent, rawName);
    const info = await lstat(parent).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (!info) await mkdir(parent);
    else if (!info.isDirectory())
      throw unsafe(
        rawName,
        `would be written through ${info.isSymbolicLink() ? 'a symlink' : 'a file'} ` +
          `(${path.relative(this.root, parent)})`,
      );
    this.directories.add(parent);
  }

  private checkSize(size: number, rawName: string): void {
    const maxEntry = this.options.maxEntryBytes ?? 16 * 1024 ** 3;
    if (size > maxEntry)
      throw new NuwaxError(
        ErrorCodes.E_ARCHIVE,
        `Entry "${rawName}" is ${size} bytes, over the ${maxEntry}-byte bound`,
        { details: { entry: rawName } },
      );
    // Decided on the header's size, before a byte of the entry is written.
    const after = this.result.bytes + size;
    if (after > this.bound.bytes)
      throw new NuwaxError(
        ErrorCodes.E_ARCHIVE,
        `Entry "${rawName}" (${formatBytes(size)}) would expand the archive to ${formatBytes(after)}, ` +
          `past its bound of ${this.bound.describe}: refused`,
        { details: { entry: rawName, size, bound: this.bound.bytes } },
      );
  }

  /**
   * Creates `absolute` without following anything: a regular file already there (an earlier
   * entry of the same name) is replaced; a symlink or a folder there is refused.
   */
  private async replaceable(absolute: string, rawName: string, create: () => Promise<void>): Promise<void> {
    await this.pending.get(absolute);
    try {
      await create();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const existing = await lstat(absolute);
      if (!existing.isFile()) throw unsafe(rawName, `would replace an existing ${kindOf(existing)}`);
      await unlink(absolute);
      await create();
    }
  }

  /**
   * One entry. `body` gives a file's content: a Buffer (whole) or pieces; a writer that returns
   * without calling it leaves the content to be skipped by the reader.
   */
  async entry(
    rawName: string,
    kind: EntryKind,
    facts: EntryFacts,
    body: (() => Promise<Buffer> | AsyncIterable<Buffer>) | null,
  ): Promise<void> {
    throwIfAborted(this.options.signal);
    if (this.failure) throw this.failure;
    const relative = this.relativeOf(rawName);
    if (relative === null) return;
    if (kind === 'other') throw unsafe(rawName, 'is a device, fifo or other special file');
    const absolute = this.absoluteOf(relative);
    await this.prepareParent(absolute, rawName);
    if (kind === 'directory') return this.directory(absolute, rawName, facts);
    if (kind === 'symlink') return this.symlink(absolute, rawName, facts.linkname ?? '');
    if (kind === 'link') return this.hardLink(absolute, rawName, facts.linkname ?? '');
    this.checkSize(facts.size, rawName);
    this.written.add(relative);
    const content = body ? body() : null;
    if (facts.size <= SMALL_FILE) {
      // Creating many small files one after another is what makes a naive restore slow:
      // they are held whole and written several at once.
      const data = await whole(content);
      if (data.length !== facts.size)
        throw new NuwaxError(
          ErrorCodes.E_ARCHIVE,
          `Entry "${rawName}" holds ${data.length} bytes, its header says ${facts.size}`,
          { details: { entry: rawName } },
        );
      this.background(absolute, this.writeSmall(absolute, rawName, data, facts));
      while (this.inFlight.size >= (this.options.concurrency ?? 16)) await Promise.race(this.inFlight);
    } else {
      await this.writeLarge(
        absolute,
        rawName,
        content && !(content instanceof Promise) ? content : toPieces(content),
        facts,
      );
    }
    this.result.files += 1;
    this.result.bytes += facts.size;
    this.report.update(this.result.bytes, { files: this.result.files });
  }

  private async directory(absolute: string, rawName: string, facts: EntryFacts): Promise<void> {
    if (!this.directories.has(absolute)) {
      await mkdir(absolute).catch(async (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
        const existing = await lstat(absolute);
        if (!existing.isDirectory())
          throw unsafe(
            rawName,
            `would turn an existing ${existing.isSymbolicLink() ? 'symlink' : 'file'} into a folder`,
          );
      });
      this.directories.add(absolute);
    }
    this.result.directories += 1;
    this.directoryFacts.push([absolute, facts.mtime, facts.mode]);
  }

  private async symlink(absolute: string, rawName: string, linkname: string): Promise<void> {
    if (linkname === '' || path.isAbsolute(linkname) || linkname.includes('\0') || /^[a-zA-Z]:/.test(linkname))
      throw unsafe(rawName, `is a link to "${linkname}", not a relative path`);
    if (!this.inside(path.resolve(path.dirname(absolute), linkname)))
      throw unsafe(rawName, `is a link pointing outside the destination ("${linkname}")`);
    await this.replaceable(absolute, rawName, () => symlink(linkname, absolute));
    // Where it points through other links is checked when the tree is complete (finish()).
    this.links.push([absolute, rawName]);
    this.result.symlinks += 1;
  }

  private async hardLink(absolute: string, rawName: string, linkname: string): Promise<void> {
    let target: string | null = null;
    try {
      target = linkname ? this.relativeOf(linkname) : null;
    } catch (error) {
      throw unsafe(rawName, `is a hard link to "${linkname}" (${(error as Error).message})`);
    }
    const source = target === null ? null : this.absoluteOf(target);
    if (source === null || target === null || !this.written.has(target))
      throw unsafe(rawName, `is a hard link to "${linkname}", which is not a file extracted before it`);
    await this.pending.get(source);
    await this.replaceable(absolute, rawName, () => link(source, absolute));
    this.written.add(path.relative(this.root, absolute).split(path.sep).join('/'));
    this.result.files += 1;
  }

  private async create(absolute: string, rawName: string, mode: number): Promise<FileHandle> {
    let handle: FileHandle | undefined;
    await this.replaceable(absolute, rawName, async () => {
      handle = await open(absolute, CREATE_FLAGS, mode & 0o777);
    });
    return handle!;
  }

  private async finishFile(handle: FileHandle, facts: EntryFacts): Promise<void> {
    if ((facts.mode & 0o777 & UMASK) !== 0) await handle.chmod(facts.mode & 0o777);
    await handle.utimes(facts.mtime, facts.mtime);
  }

  private async writeSmall(absolute: string, rawName: string, data: Buffer, facts: EntryFacts): Promise<void> {
    const handle = await this.create(absolute, rawName, facts.mode);
    try {
      if (data.length > 0) await handle.write(data, 0, data.length, 0);
      await this.finishFile(handle, facts);
    } finally {
      await handle.close();
    }
  }

  private async writeLarge(
    absolute: string,
    rawName: string,
    body: AsyncIterable<Buffer>,
    facts: EntryFacts,
  ): Promise<void> {
    const handle = await this.create(absolute, rawName, facts.mode);
    const writing = (async () => {
      try {
        let position = 0;
        for await (const data of body) {
          throwIfAborted(this.options.signal);
          await handle.write(data, 0, data.length, position);
          position += data.length;
        }
        if (position !== facts.size)
          throw new NuwaxError(
            ErrorCodes.E_ARCHIVE,
            `Entry "${rawName}" holds ${position} bytes, its header says ${facts.size}`,
            { details: { entry: rawName } },
          );
        await this.finishFile(handle, facts);
      } finally {
        await handle.close();
      }
    })();
    this.pending.set(absolute, writing);
    try {
      await writing;
    } finally {
      this.pending.delete(absolute);
    }
  }

  private background(absolute: string, work: Promise<void>): void {
    const done = () => {
      this.inFlight.delete(tracked);
      if (this.pending.get(absolute) === tracked) this.pending.delete(absolute);
    };
    const tracked: Promise<void> = work.then(done, (error: unknown) => {
      done();
      this.failure ??= error;
    });
    this.inFlight.add(tracked);
    this.pending.set(absolute, tracked);
  }

  private inside(resolved: string): boolean {
    return resolved === this.root || resolved.startsWith(this.root + path.sep);
  }

  /**
   * Where a link really leads, component by component as the kernel resolves it, through the
   * other links of the tree: `a -> .` then `b -> a/..` leaves the root though each looks inside.
   * Returns null when it leaves the root (or loops).
   */
  private async follow(directory: string, target: string, hops: { count: number }): Promise<string | null> {
    let current = directory;
    const parts = target.split(/[\\/]/);
    for (let index = 0; index < parts.length; index += 1) {
      const part = parts[index]!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (current === this.root) return null;
        current = path.dirname(current);
        continue;
      }
      const next = path.join(current, part);
      const info = await lstat(next).catch(whenAbsent(null, 'ENOTDIR'));
      if (!info) {
        // Missing: the rest can only be followed by name.
        const rest = path.resolve(next, ...parts.slice(index + 1));
        return this.inside(rest) ? rest : null;
      }
      if (info.isSymbolicLink()) {
        hops.count += 1;
        const inner = await readlink(next);
        if (hops.count > MAX_LINK_HOPS || path.isAbsolute(inner)) return null;
        const resolved = await this.follow(current, inner, hops);
        if (resolved === null) return null;
        current = resolved;
        continue;
      }
      current = next;
    }
    return current;
  }

  /** Waits for the concurrent writes, whatever their outcome (after a failure). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  async finish(): Promise<ExtractResult> {
    await Promise.all([...this.inFlight]);
    if (this.failure) throw this.failure;
    for (const [absolute, rawName] of this.links) {
      const target = await readlink(absolute);
      if ((await this.follow(path.dirname(absolute), target, { count: 0 })) === null) {
        await unlink(absolute);
        throw unsafe(rawName, `is a link ("${target}") that leads outside the destination through other links`);
      }
    }
    // Folder modes and times last: a read-only folder would block writes into it.
    for (const [directory, mtime, mode] of this.directoryFacts.reverse()) {
      await chmod(directory, mode & 0o777);
      await utimes(directory, mtime, mtime);
    }
    this.report.finish(this.result.bytes, { files: this.result.files });
    return this.result;
  }
}
