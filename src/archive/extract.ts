import { createHash } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { ErrorCodes, NuwaxError, throwIfAborted } from '../errors/index.js';
import { sha256File } from '../fsutil/index.js';
import { extractionBound } from './bound.js';
import { type InflateOptions, inflateFile, readPlain } from './gzip-members.js';
import { type EntryKind, type ExtractOptions, type ExtractResult, SafeWriter, SMALL_FILE } from './safe-writer.js';
import { parseTar, type TarEntry } from './tar-reader.js';

export type ArchiveFormat = 'tar.gz' | 'tar' | 'zip';

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
  throw new NuwaxError(ErrorCodes.E_ARCHIVE, `${path.basename(file)} is neither a tar.gz, a tar nor a zip archive`, {
    details: { file },
  });
}

export function tarKind(type: string | null | undefined): EntryKind {
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

/**
 * Every entry of a tar or tar.gz in order (tar-reader.ts). Errors of the bytes below (gzip,
 * truncation) are E_ARCHIVE.
 */
export async function* readTarEntries(
  file: string,
  format: 'tar' | 'tar.gz',
  options: InflateOptions,
): AsyncGenerator<TarEntry> {
  try {
    yield* parseTar(format === 'tar.gz' ? inflateFile(file, options) : readPlain(file, options));
  } catch (error) {
    if (error instanceof NuwaxError) throw error;
    throw new NuwaxError(ErrorCodes.E_ARCHIVE, `Cannot read ${path.basename(file)}: ${(error as Error).message}`, {
      cause: error,
      details: { file },
    });
  }
}

async function extractTar(
  file: string,
  format: 'tar' | 'tar.gz',
  writer: SafeWriter,
  options: ExtractOptions,
): Promise<string> {
  const hash = createHash('sha256');
  for await (const entry of readTarEntries(file, format, {
    signal: options.signal,
    onRaw: (chunk) => hash.update(chunk),
  })) {
    const { header } = entry;
    const kind = tarKind(header.type);
    const facts = {
      size: header.size,
      mode: header.mode,
      mtime: header.mtime,
      linkname: header.linkname || undefined,
    };
    // Small bodies whole (a slice of the inflated data), large ones in pieces; the parser skips
    // what the writer does not read (links, folders, the stripped prefix).
    const body = kind !== 'file' ? null : header.size <= SMALL_FILE ? entry.read : entry.stream;
    await writer.entry(header.name, kind, facts, body);
    throwIfAborted(options.signal);
  }
  return hash.digest('hex');
}

/** yauzl validates names itself (absolute, `..`): those failures are unsafe paths, like ours. */
function zipError(file: string, error: unknown): NuwaxError {
  if (error instanceof NuwaxError) return error;
  const message = (error as Error).message;
  const code = /absolute path|invalid relative path|invalid characters/.test(message)
    ? ErrorCodes.E_UNSAFE_PATH
    : ErrorCodes.E_ARCHIVE;
  return new NuwaxError(code, `Cannot extract ${path.basename(file)}: ${message}`, { cause: error, details: { file } });
}

function zipKind(entry: yauzl.Entry): EntryKind {
  const type = (entry.externalFileAttributes >>> 16) & 0o170000;
  if (entry.fileName.endsWith('/') || type === 0o040000) return 'directory';
  if (type === 0o120000) return 'symlink';
  return type === 0 || type === 0o100000 ? 'file' : 'other';
}

async function zipEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, writer: SafeWriter): Promise<void> {
  const kind = zipKind(entry);
  const mode = (entry.externalFileAttributes >>> 16) & 0o777;
  const facts = {
    size: entry.uncompressedSize,
    mode: mode || (kind === 'directory' ? 0o755 : 0o644),
    mtime: entry.getLastModDate(),
  };
  if (kind === 'directory' || kind === 'other') return writer.entry(entry.fileName, kind, facts, null);
  if (kind === 'symlink' && entry.uncompressedSize > 4096)
    throw new NuwaxError(
      ErrorCodes.E_ARCHIVE,
      `Symlink "${entry.fileName}" has a ${entry.uncompressedSize}-byte target`,
    );
  const stream = await new Promise<Readable>((resolve, reject) =>
    zip.openReadStream(entry, (error, opened) => (error || !opened ? reject(error) : resolve(opened))),
  );
  if (kind === 'file') return writer.entry(entry.fileName, 'file', facts, () => stream as AsyncIterable<Buffer>);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return writer.entry(entry.fileName, 'symlink', { ...facts, linkname: Buffer.concat(chunks).toString('utf8') }, null);
}

async function extractZip(file: string, writer: SafeWriter, options: ExtractOptions): Promise<void> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(
      file,
      { lazyEntries: true, validateEntrySizes: true, decodeStrings: true, autoClose: false },
      (error, opened) => (error || !opened ? reject(zipError(file, error)) : resolve(opened)),
    ),
  );
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', (error: unknown) => reject(zipError(file, error)));
      zip.on('end', resolve);
      zip.on('entry', (entry: yauzl.Entry) => {
        if (options.signal?.aborted) {
          reject(new NuwaxError(ErrorCodes.E_ABORTED, 'The operation was cancelled', { cause: options.signal.reason }));
          return;
        }
        zipEntry(zip, entry, writer).then(
          () => zip.readEntry(),
          (error: unknown) => reject(zipError(file, error)),
        );
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
}

/**
 * Extracts a tar.gz, tar or zip into `destination` (a staging folder): nothing is ever written
 * outside it (SPEC 5). On failure the destination may hold part of the archive: callers discard it.
 */
export async function extractArchive(
  file: string,
  destination: string,
  options: ExtractOptions = {},
): Promise<ExtractResult> {
  const format = await detectArchiveFormat(file);
  await mkdir(destination, { recursive: true });
  const writer = new SafeWriter(destination, options, await extractionBound(file, destination, options));
  let sha256: string | null = null;
  try {
    if (format === 'zip') {
      await extractZip(file, writer, options);
      if (options.sha256) sha256 = (await sha256File(file, options.signal)).sha256;
    } else sha256 = await extractTar(file, format, writer, options);
  } catch (error) {
    await writer.settle();
    throw error;
  }
  const result = await writer.finish();
  if (options.sha256 && sha256 !== null && sha256 !== options.sha256.toLowerCase()) {
    throw new NuwaxError(
      ErrorCodes.E_HASH_MISMATCH,
      `${path.basename(file)} has sha256 ${sha256}, expected ${options.sha256}`,
      { details: { file, expected: options.sha256, actual: sha256 } },
    );
  }
  return { ...result, sha256 };
}
