import { createHash } from 'node:crypto';
import { ErrorCodes, NuwaxError, throwIfAborted } from '../errors/index.js';
import { detectArchiveFormat, readTarEntries } from './extract.js';

export interface ArchiveEntry {
  name: string;
  type: string;
  size: number;
}

/**
 * Every entry of a tar.gz or tar, the archive read to its end (bodies are skipped, not trusted):
 * a truncated or corrupted archive throws E_ARCHIVE (used by backup verify and release tests).
 */
export async function listArchive(file: string, options: { signal?: AbortSignal } = {}): Promise<ArchiveEntry[]> {
  const format = await detectArchiveFormat(file);
  if (format === 'zip')
    throw new NuwaxError(ErrorCodes.E_ARCHIVE, 'Listing a zip archive is not supported', { details: { file } });
  const entries: ArchiveEntry[] = [];
  for await (const entry of readTarEntries(file, format, { signal: options.signal })) {
    throwIfAborted(options.signal);
    entries.push({ name: entry.header.name, type: entry.header.type, size: entry.header.size });
  }
  return entries;
}

/** Reads every entry to its end and hashes the file in the same pass (backup verify). */
export async function checkArchive(
  file: string,
  options: { signal?: AbortSignal } = {},
): Promise<{ entries: number; sha256: string }> {
  const format = await detectArchiveFormat(file);
  if (format === 'zip')
    throw new NuwaxError(ErrorCodes.E_ARCHIVE, 'Checking a zip archive is not supported', { details: { file } });
  const hash = createHash('sha256');
  let entries = 0;
  for await (const _entry of readTarEntries(file, format, {
    signal: options.signal,
    onRaw: (chunk) => hash.update(chunk),
  })) {
    throwIfAborted(options.signal);
    entries += 1;
  }
  return { entries, sha256: hash.digest('hex') };
}
