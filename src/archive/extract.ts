import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, link, lstat, mkdir, open, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tarStream from 'tar-stream';
import yauzl from 'yauzl';
import { createProgressReporter, type ProgressListener, type StepName } from '../events/index.js';
import { ErrorCodes, NuwaxError, throwIfAborted } from '../errors/index.js';
import { checkRelativePath } from '../fsutil/index.js';

export type ArchiveFormat = 'tar.gz' | 'tar' | 'zip';

export interface ExtractOptions {
  signal?: AbortSignal;
  stripPrefix?: string;
  maxEntryBytes?: number;
  maxTotalBytes?: number;
  onProgress?: ProgressListener;
  step?: StepName;
  concurrency?: number;
}

export interface ExtractResult {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  entries: string[];
}

/** SPEC 5: detected by magic bytes, never by name. */
export async function detectArchiveFormat(file: string): Promise<ArchiveFormat> {
  const handle = await open(file, 'r');
  const head = Buffer.alloc(262);
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
  if (head.readUInt32LE(0) === 0x04034b50 || head.readUInt32LE(0) === 0x06054b50) return 'zip';
  if (head.toString('latin1', 257, 262) === 'ustar') return 'tar';
  throw new NuwaxError(ErrorCodes.E_ARCHIVE, `${path.basename(file)} is neither a tar.gz, a tar nor a zip archive`);
}

const SMALL_FILE = 256 * 1024;

type EntryKind = 'file' | 'directory' | 'symlink' | 'link' | 'other';

/**
 * Decides per entry and refuses rather than sanitises (tar-fs as the model): no absolute paths,
 * no `..`, no device files, no link pointing outside, never a write through a link the archive made.
 */
class SafeWriter {
  readonly result: ExtractResult = { files: 0, directories: 0, symlinks: 0, bytes: 0, entries: [] };
  private readonly root: string;
  private readonly pending = new Set<Promise<void>>();
  private readonly directoryTimes: Array<[string, Date, number]> = [];
  private prefix: string | undefined;
  private readonly report: ReturnType<typeof createProgressReporter>;

  constructor(destination: string, private readonly options: ExtractOptions) {
    this.root = path.resolve(destination);
    this.report = createProgressReporter(options.step ?? 'staging', null, options.onProgress);
  }

  /** Maps an archive name to a checked path inside the root, or null for the stripped prefix itself. */
  target(rawName: string): { relative: string; absolute: string } | null {
    let name = rawName.replace(/\\/g, '/');
    const strip = this.options.stripPrefix?.replace(/\/?$/, '/');
    if (strip) {
      const clean = name.replace(/^\.\//, '');
      this.prefix ??= clean.startsWith(strip) || clean === strip.slice(0, -1) ? strip : '';
      if (this.prefix) {
        if (clean === strip || clean === strip.slice(0, -1)) return null;
        if (!clean.startsWith(strip)) throw new NuwaxError(ErrorCodes.E_ARCHIVE, `Entry "${rawName}" is outside ${strip} while others are inside it`);
        name = clean.slice(strip.length);
      }
    }
    if (name === '.' || name === './' || name === '') return null;
    const relative = checkRelativePath(name, 'archive entry');
    return { relative, absolute: path.join(this.root, ...relative.split('/')) };
  }

  /** Every parent must be a real directory: refuses a file written "through" a symlink entry. */
  private async prepareParent(absolute: string, rawName: string): Promise<void> {
    const parts = path.relative(this.root, path.dirname(absolute)).split(path.sep).filter(Boolean);
    let current = this.root;
    await mkdir(current, { recursive: true });
    for (const part of parts) {
      current = path.join(current, part);
      const info = await lstat(current).catch(() => null);
      if (!info) await mkdir(current);
      else if (!info.isDirectory()) throw new NuwaxError(ErrorCodes.E_UNSAFE_PATH, `Entry "${rawName}" would be written through ${info.isSymbolicLink() ? 'a symlink' : 'a file'} (${path.relative(this.root, current)})`, { details: { entry: rawName } });
    }
  }

  private checkSize(size: number, rawName: string): void {
    const maxEntry = this.options.maxEntryBytes ?? 16 * 1024 ** 3;
    if (size > maxEntry) throw new NuwaxError(ErrorCodes.E_ARCHIVE, `Entry "${rawName}" is ${size} bytes, over the ${maxEntry}-byte bound`, { details: { entry: rawName } });
    if (this.result.bytes + size > (this.options.maxTotalBytes ?? 64 * 1024 ** 3)) throw new NuwaxError(ErrorCodes.E_ARCHIVE, `The archive expands past ${this.options.maxTotalBytes} bytes`);
  }

  async entry(rawName: string, kind: EntryKind, facts: { size: number; mode: number; mtime: Date; linkname?: string }, body: Readable | null): Promise<void> {
    throwIfAborted(this.options.signal);
    const target = this.target(rawName);
    if (!target) {
      body?.resume();
      return;
    }
    const { absolute, relative } = target;
    if (kind === 'other') throw new NuwaxError(ErrorCodes.E_UNSAFE_PATH, `Entry "${rawName}" is a device, fifo or other special file: refused`, { details: { entry: rawName } });
    await this.prepareParent(absolute, rawName);
    const existing = await lstat(absolute).catch(() => null);
    if (existing && (existing.isSymbolicLink() || (kind !== 'directory' && existing.isDirectory()))) {
      throw new NuwaxError(ErrorCodes.E_UNSAFE_PATH, `Entry "${rawName}" would replace an existing ${existing.isSymbolicLink() ? 'symlink' : 'directory'}`, { details: { entry: rawName } });
    }
    this.result.entries.push(relative);
    if (kind === 'directory') {
      await mkdir(absolute, { recursive: true });
      this.directoryTimes.push([absolute, facts.mtime, facts.mode]);
      this.result.directories += 1;
      return;
    }
    if (kind === 'symlink' || kind === 'link') {
      const linkname = facts.linkname ?? '';
      if (path.isAbsolute(linkname) || linkname.includes('\0')) throw new NuwaxError(ErrorCodes.E_UNSAFE_PATH, `Link "${rawName}" points to the absolute path "${linkname}": refused`, { details: { entry: rawName } });
      const resolved = kind === 'symlink' ? path.resolve(path.dirname(absolute), linkname) : path.resolve(this.root, linkname);
      if (resolved !== this.root && !resolved.startsWith(this.root + path.sep)) {
        throw new NuwaxError(ErrorCodes.E_UNSAFE_PATH, `Link "${rawName}" points outside the destination ("${linkname}"): refused`, { details: { entry: rawName } });
      }
      if (kind === 'symlink') {
        await symlink(linkname, absolute);
        this.result.symlinks += 1;
      } else {
        const source = await lstat(resolved).catch(() => null);
        if (!source?.isFile()) throw new NuwaxError(ErrorCodes.E_UNSAFE_PATH, `Hard link "${rawName}" must point to a file already extracted ("${linkname}")`, { details: { entry: rawName } });
        await link(resolved, absolute);
        this.result.files += 1;
      }
      return;
    }
    this.checkSize(facts.size, rawName);
    const mode = facts.mode & 0o777;
    if (facts.size <= SMALL_FILE && body) {
      // Small files are buffered and written concurrently: creating many small files one after
      // another is what makes a naive restore slow (issue 4).
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      const data = Buffer.concat(chunks);
      const write = writeFile(absolute, data, { mode }).then(() => utimes(absolute, facts.mtime, facts.mtime));
      this.track(write);
      if (this.pending.size >= (this.options.concurrency ?? 16)) await Promise.race(this.pending);
    } else if (body) {
      await pipeline(body, createWriteStream(absolute, { mode }), this.options.signal ? { signal: this.options.signal } : {});
      await utimes(absolute, facts.mtime, facts.mtime);
    }
    this.result.files += 1;
    this.result.bytes += facts.size;
    this.report.update(this.result.bytes, { files: this.result.files });
  }

  private track(work: Promise<void>): void {
    const tracked = work.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  /** Waits for the concurrent writes, whatever their outcome. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  async finish(): Promise<ExtractResult> {
    await Promise.all(this.pending);
    // Directory modes and times last: a read-only directory would block writes into it.
    for (const [directory, mtime, mode] of this.directoryTimes.reverse()) {
      await chmod(directory, (mode & 0o777) | 0o700);
      await utimes(directory, mtime, mtime);
    }
    this.report.finish(this.result.bytes, { files: this.result.files });
    return this.result;
  }
}

function tarKind(type: string | null | undefined): EntryKind {
  switch (type) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'directory':
      return 'directory';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'link';
    default:
      return 'other';
  }
}

async function extractTar(file: string, gzip: boolean, writer: SafeWriter, options: ExtractOptions): Promise<void> {
  const extract = tarStream.extract();
  const source = createReadStream(file, { highWaterMark: 1 << 20 });
  const feeding = gzip ? pipeline(source, createGunzip({ chunkSize: 1 << 18 }), extract) : pipeline(source, extract);
  feeding.catch(() => undefined);
  try {
    for await (const entry of extract) {
      const header = entry.header;
      await writer.entry(header.name, tarKind(header.type), { size: header.size ?? 0, mode: header.mode ?? 0o644, mtime: header.mtime ?? new Date(), ...(header.linkname ? { linkname: header.linkname } : {}) }, entry as unknown as Readable);
      throwIfAborted(options.signal);
    }
    await feeding;
  } catch (error) {
    source.destroy();
    extract.destroy();
    if (error instanceof NuwaxError) throw error;
    throw new NuwaxError(ErrorCodes.E_ARCHIVE, `Cannot read ${path.basename(file)}: ${(error as Error).message}`, { cause: error });
  }
}

async function extractZip(file: string, writer: SafeWriter): Promise<void> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) => yauzl.open(file, { lazyEntries: true, validateEntrySizes: true, decodeStrings: true }, (error, opened) => (error ? reject(error) : resolve(opened!))));
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', reject);
      zip.on('end', resolve);
      zip.on('entry', (entry: yauzl.Entry) => {
        const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
        const type = mode & 0o170000;
        const isDirectory = entry.fileName.endsWith('/') || type === 0o040000;
        const kind: EntryKind = isDirectory ? 'directory' : type === 0o120000 ? 'symlink' : type === 0 || type === 0o100000 ? 'file' : 'other';
        const facts = { size: entry.uncompressedSize, mode: mode & 0o777 || (isDirectory ? 0o755 : 0o644), mtime: entry.getLastModDate() };
        if (kind === 'directory' || kind === 'other') {
          writer.entry(entry.fileName, kind, facts, null).then(() => zip.readEntry(), reject);
          return;
        }
        zip.openReadStream(entry, async (error, stream) => {
          if (error || !stream) return reject(error);
          try {
            if (kind === 'symlink') {
              const chunks: Buffer[] = [];
              for await (const chunk of stream) chunks.push(chunk as Buffer);
              await writer.entry(entry.fileName, 'symlink', { ...facts, linkname: Buffer.concat(chunks).toString('utf8') }, null);
            } else {
              await writer.entry(entry.fileName, 'file', facts, stream);
            }
            zip.readEntry();
          } catch (caught) {
            reject(caught);
          }
        });
      });
      zip.readEntry();
    });
  } catch (error) {
    if (error instanceof NuwaxError) throw error;
    throw new NuwaxError(ErrorCodes.E_ARCHIVE, `Cannot read ${path.basename(file)}: ${(error as Error).message}`, { cause: error });
  } finally {
    zip.close();
  }
}

/** Extracts into `destination` (a staging folder): nothing is ever written outside it. */
export async function extractArchive(file: string, destination: string, options: ExtractOptions = {}): Promise<ExtractResult> {
  const format = await detectArchiveFormat(file);
  const writer = new SafeWriter(destination, options);
  await mkdir(destination, { recursive: true });
  try {
    if (format === 'zip') await extractZip(file, writer);
    else await extractTar(file, format === 'tar.gz', writer, options);
  } catch (error) {
    await writer.settle();
    throw error;
  }
  return writer.finish();
}
