import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { fsyncDirectory, fsyncFile } from '../fsutil/index.js';
import type { Store } from '../state/index.js';

/** Lower-case hex; accepts a "sha256:" prefix (SPEC 4). Anything else cannot be verified. */
export function normaliseSha256(hash: string): string {
  const hex = hash
    .trim()
    .replace(/^sha256:/i, '')
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new NuwaxError(
      ErrorCodes.E_UNVERIFIED,
      `Refusing a download without a SHA-256 to check it against (got "${hash}")`,
      { details: { sha256: hash } },
    );
  }
  return hex;
}

const KNOWN_EXTENSIONS = /\.(tar\.gz|tgz|tar|zip)$/i;

/** The partial file is named after the expected hash, so a new process finds it again (resume). */
export function partialPathFor(directory: string, sha256: string): string {
  return path.join(directory, `${sha256}.part`);
}

/** Final name: the hash plus the package's extension (from the hint, else the URL), so staging can sniff nothing. */
export function finalPathFor(directory: string, sha256: string, urls: string[], hint?: string): string {
  let source = hint ?? '';
  if (!source && urls[0]) {
    try {
      source = new URL(urls[0]).pathname;
    } catch {
      source = urls[0];
    }
  }
  const extension = KNOWN_EXTENSIONS.exec(source)?.[0].toLowerCase() ?? '.pkg';
  return path.join(directory, `${sha256}${extension}`);
}

export async function sizeOf(file: string): Promise<number | null> {
  try {
    return (await stat(file)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * Hashes the first `length` bytes of a file: a final file found on disk, and the prefix of a
 * resume with the 'inline' engine. node:crypto cannot export its state, so after a restart of the
 * process the prefix on disk is hashed again; hash-wasm's saveable state was measured and loses
 * (it hashes several times slower: scripts/bench/README.md, "download"). A resume by default does
 * this re-hash on another thread, during the fetch (follower.ts).
 */
export async function hashPrefix(file: string, length: number, signal?: AbortSignal): Promise<Hash> {
  const hash = createHash('sha256');
  if (length <= 0) return hash;
  const source = createReadStream(file, { start: 0, end: length - 1, highWaterMark: 1 << 20 });
  await pipeline(
    source,
    async (chunks: AsyncIterable<Buffer>) => {
      for await (const chunk of chunks) hash.update(chunk);
    },
    signal ? { signal } : {},
  );
  return hash;
}

/** SPEC 7: complete only after size and hash match; then fsync, rename, fsync the folder, and only then the row. */
export async function commitDownload(partial: string, final: string): Promise<void> {
  await fsyncFile(partial);
  await rename(partial, final);
  await fsyncDirectory(path.dirname(final));
}

/** A completed download is found again by hash, so the same release is never fetched twice. */
export async function findCompletedDownload(store: Store, sha256: string): Promise<string | undefined> {
  const row = store.downloads.findByHash(normaliseSha256(sha256));
  if (row?.status !== 'complete') return undefined;
  const size = await sizeOf(row.path);
  if (size === null) return undefined;
  return row.size === null || row.size === size ? row.path : undefined;
}
