import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Dispatcher, getGlobalDispatcher, interceptors, request } from 'undici';
import { createProgressReporter, type ProgressListener } from '../events/index.js';
import { ErrorCodes, NuwaxError, throwIfAborted, toNuwaxError } from '../errors/index.js';
import { ensureFreeSpace, exists, fsyncDirectory } from '../fsutil/index.js';
import { type Logger, silentLogger } from '../log/index.js';
import type { DownloadRow, Store } from '../state/index.js';

export interface DownloadOptions {
  urls: string[];
  sha256: string;
  size?: number | null;
  directory: string;
  store: Store;
  signal?: AbortSignal;
  retries?: number;
  stallTimeoutMs?: number;
  rateLimit?: number;
  backoff?: { baseMs: number; maxMs: number };
  onProgress?: ProgressListener;
  logger?: Logger;
  dispatcher?: Dispatcher;
  fileName?: string;
}

export interface DownloadResult {
  path: string;
  size: number;
  sha256: string;
  reused: boolean;
  resumedFrom: number;
  fetchedBytes: number;
  url: string;
}

/** Free space kept beyond what the download still needs (SPEC 7). */
const SPACE_MARGIN = 16 * 1024 * 1024;
/** How often the offset is persisted: a kill -9 loses at most this much re-download. */
const PERSIST_EVERY_BYTES = 4 * 1024 * 1024;
const FATAL_STATUSES = new Set([400, 401, 403, 404, 405, 410, 451]);

function normaliseHash(hash: string): string {
  const hex = hash.replace(/^sha256:/i, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new NuwaxError(ErrorCodes.E_UNVERIFIED, `Refusing a download without a SHA-256 to check it against ("${hash}")`);
  return hex;
}

function finalNameFor(sha256: string, urls: string[], hint?: string): string {
  const source = hint ?? new URL(urls[0]!).pathname;
  const extension = /\.(tar\.gz|tgz|zip|tar)$/i.exec(source)?.[0] ?? '.pkg';
  return `${sha256}${extension}`;
}

/** A completed download is found again by hash (issue 3): the same release is never fetched twice. */
export async function findCompletedDownload(store: Store, sha256: string): Promise<string | undefined> {
  const row = store.downloads.findByHash(normaliseHash(sha256));
  if (row?.status !== 'complete') return undefined;
  try {
    const info = await stat(row.path);
    return row.size === null || info.size === row.size ? row.path : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Re-hashes the prefix already on disk. Chosen by measurement: node:crypto hashes ~900 MiB/s here,
 * so re-reading even 1 GiB costs about a second, while hash-wasm (the engine that could save and
 * restore its state) hashes the whole stream ~6x slower. The streaming pass decides the speed.
 */
async function hashPrefix(file: string, length: number, signal?: AbortSignal): Promise<Hash> {
  const hash = createHash('sha256');
  if (length > 0) await pipeline(createReadStream(file, { start: 0, end: length - 1, highWaterMark: 1 << 20 }), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) hash.update(chunk);
  }, signal ? { signal } : {});
  return hash;
}

class RestartFromZero extends Error {}

interface Attempt {
  url: string;
  partPath: string;
  row: DownloadRow;
  expectedSize: number | null;
  options: DownloadOptions;
  fetched: { bytes: number };
  report: ReturnType<typeof createProgressReporter>;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** One HTTP request: resumes from the bytes on disk, validated with If-Range; returns when the body ends. */
async function fetchOnce(attempt: Attempt): Promise<void> {
  const { url, partPath, row, options } = attempt;
  const onDisk = (await exists(partPath)) ? (await stat(partPath)).size : 0;
  let offset = row.etag || row.lastModified ? onDisk : 0;
  if (attempt.expectedSize !== null && offset > attempt.expectedSize) offset = 0;
  const headers: Record<string, string> = { 'user-agent': 'nuwax', 'accept-encoding': 'identity' };
  if (offset > 0) {
    headers.range = `bytes=${offset}-`;
    headers['if-range'] = row.etag ?? row.lastModified!;
  }
  const dispatcher = (options.dispatcher ?? getGlobalDispatcher()).compose(interceptors.redirect({ maxRedirections: 5 }));
  const stall = options.stallTimeoutMs ?? 30_000;
  const response = await request(url, { headers, signal: options.signal, dispatcher, headersTimeout: stall, bodyTimeout: stall, highWaterMark: 1 << 20 } as Parameters<typeof request>[1]);
  const status = response.statusCode;
  if (status === 416) {
    await response.body.dump();
    if (attempt.expectedSize !== null && onDisk === attempt.expectedSize) return;
    throw new RestartFromZero('416 with an incomplete file');
  }
  if (FATAL_STATUSES.has(status)) {
    await response.body.dump();
    throw new NuwaxError(ErrorCodes.E_HTTP, `The server answered HTTP ${status} for ${url}`, { details: { statusCode: status, url, fatal: true } });
  }
  if (status !== 200 && status !== 206) {
    await response.body.dump();
    throw new NuwaxError(ErrorCodes.E_HTTP, `The server answered HTTP ${status} for ${url}`, { details: { statusCode: status, url } });
  }
  let start = 0;
  if (status === 206) {
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(response.headers, 'content-range') ?? '');
    if (!range || Number(range[1]) !== offset) {
      await response.body.dump();
      throw new RestartFromZero(`Content-Range "${header(response.headers, 'content-range')}" does not start at ${offset}`);
    }
    if (range[3] !== '*' && attempt.expectedSize !== null && Number(range[3]) !== attempt.expectedSize) {
      await response.body.dump();
      throw new NuwaxError(ErrorCodes.E_SIZE_MISMATCH, `The server's file is ${range[3]} bytes, the manifest says ${attempt.expectedSize}`);
    }
    start = offset;
  }
  // A 200 while resuming means the server ignored Range or the file changed (If-Range): start over, truncating.
  const length = header(response.headers, 'content-length');
  if (length !== undefined && attempt.expectedSize !== null && start + Number(length) !== attempt.expectedSize) {
    await response.body.dump();
    throw new NuwaxError(ErrorCodes.E_SIZE_MISMATCH, `The server announces ${start + Number(length)} bytes, the manifest says ${attempt.expectedSize}`);
  }
  row.etag = header(response.headers, 'etag') ?? null;
  row.lastModified = header(response.headers, 'last-modified') ?? null;
  row.offset = start;
  row.url = url;
  options.store.downloads.save(row);
  if (start === 0 && onDisk > 0) await rm(partPath, { force: true });
  const hash = await hashPrefix(partPath, start, options.signal);
  await writeBody(attempt, response.body, hash, start);
}

async function writeBody(attempt: Attempt, body: AsyncIterable<Buffer> & NodeJS.ReadableStream, hash: Hash, start: number): Promise<void> {
  const { options, row, partPath } = attempt;
  let written = start;
  let persisted = start;
  const rate = options.rateLimit ?? 0;
  const began = Date.now();
  let sinceStart = 0;
  const counter = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding, callback) {
      written += chunk.length;
      sinceStart += chunk.length;
      attempt.fetched.bytes += chunk.length;
      if (attempt.expectedSize !== null && written > attempt.expectedSize) {
        callback(new NuwaxError(ErrorCodes.E_SIZE_MISMATCH, `The server sent more than the ${attempt.expectedSize} bytes announced`));
        return;
      }
      hash.update(chunk);
      attempt.report.update(written);
      const pass = () => callback(null, chunk);
      if (written - persisted >= PERSIST_EVERY_BYTES) {
        persisted = written;
        options.store.downloads.updateProgress(row.hash, written);
      }
      const ahead = rate > 0 ? (sinceStart / rate) * 1000 - (Date.now() - began) : 0;
      if (ahead > 5) setTimeout(pass, ahead);
      else pass();
    },
  });
  const output = createWriteStream(partPath, { flags: start > 0 ? 'r+' : 'w', start, highWaterMark: 1 << 20 });
  try {
    await pipeline(body, counter, output, options.signal ? { signal: options.signal } : {});
  } finally {
    // What reached the disk is the truth for the next resume (SPEC 7: never from zero).
    options.store.downloads.updateProgress(row.hash, Math.min(written, (await stat(partPath).catch(() => ({ size: 0 }))).size));
  }
  (attempt as Attempt & { digest?: string }).digest = hash.digest('hex');
}

function retryable(error: NuwaxError): boolean {
  if (error.code === ErrorCodes.E_HTTP) return !(error.details as { fatal?: boolean } | undefined)?.fatal;
  return error.code === ErrorCodes.E_NETWORK || error.code === ErrorCodes.E_STALL || error.code === ErrorCodes.E_INTERNAL;
}

function classify(error: unknown, url: string): NuwaxError {
  if (error instanceof NuwaxError) return error;
  const code = (error as { code?: string }).code ?? '';
  if (code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') return new NuwaxError(ErrorCodes.E_STALL, `No bytes from ${url} within the stall timeout`, { cause: error });
  const converted = toNuwaxError(error);
  if (converted.code !== ErrorCodes.E_INTERNAL) return converted;
  return new NuwaxError(ErrorCodes.E_NETWORK, `Download from ${new URL(url).origin} failed (${code || (error as Error).message})`, { cause: error });
}

/**
 * SPEC 7: one file, Range resume validated with If-Range, SHA-256 in the same pass as the write,
 * retries with backoff and jitter, mirrors in turn; complete only after size and hash match.
 */
export async function download(options: DownloadOptions): Promise<DownloadResult> {
  const sha256 = normaliseHash(options.sha256);
  const logger = options.logger ?? silentLogger;
  const expectedSize = options.size ?? null;
  await mkdir(options.directory, { recursive: true });
  const finalPath = path.join(options.directory, finalNameFor(sha256, options.urls, options.fileName));
  const partPath = path.join(options.directory, `${sha256}.part`);
  const done = await findCompletedDownload(options.store, sha256);
  if (done) return { path: done, size: (await stat(done)).size, sha256, reused: true, resumedFrom: 0, fetchedBytes: 0, url: options.store.downloads.findByHash(sha256)!.url };

  const onDisk = (await exists(partPath)) ? (await stat(partPath)).size : 0;
  const existing = options.store.downloads.findByHash(sha256);
  const row: DownloadRow = existing ?? { id: 0, url: options.urls[0]!, path: finalPath, size: expectedSize, hash: sha256, offset: 0, etag: null, lastModified: null, hashState: null, status: 'partial', error: null, createdAt: '', updatedAt: '' };
  row.status = 'partial';
  row.path = finalPath;
  options.store.downloads.save(row);
  if (expectedSize !== null) await ensureFreeSpace(options.directory, Math.max(0, expectedSize - onDisk) + SPACE_MARGIN, 'the download');

  const fetched = { bytes: 0 };
  const report = createProgressReporter('downloading', expectedSize, options.onProgress);
  const backoff = options.backoff ?? { baseMs: 500, maxMs: 30_000 };
  const retries = options.retries ?? 5;
  let lastError: NuwaxError | undefined;
  let restarts = 0;
  for (const url of options.urls) {
    for (let attemptNumber = 0; attemptNumber <= retries; attemptNumber += 1) {
      throwIfAborted(options.signal);
      const attempt: Attempt & { digest?: string } = { url, partPath, row, expectedSize, options, fetched, report };
      try {
        await fetchOnce(attempt);
        const size = (await stat(partPath)).size;
        if (expectedSize !== null && size < expectedSize) throw new NuwaxError(ErrorCodes.E_NETWORK, `The body from ${url} ended at ${size} of ${expectedSize} bytes`);
        const actual = attempt.digest ?? (await hashPrefix(partPath, size, options.signal)).digest('hex');
        if (actual !== sha256) {
          await rm(partPath, { force: true });
          options.store.downloads.remove(sha256);
          throw new NuwaxError(ErrorCodes.E_HASH_MISMATCH, `The download from ${url} has SHA-256 ${actual}, the manifest says ${sha256}; the file was deleted`, { details: { expected: sha256, actual, url } });
        }
        const handle = await open(partPath, 'r+');
        await handle.sync();
        await handle.close();
        await rename(partPath, finalPath);
        await fsyncDirectory(options.directory);
        options.store.downloads.save({ ...row, url, path: finalPath, size, offset: size, status: 'complete', error: null });
        report.finish(size);
        return { path: finalPath, size, sha256, reused: false, resumedFrom: onDisk, fetchedBytes: fetched.bytes, url };
      } catch (caught) {
        if (caught instanceof RestartFromZero) {
          // The server ignored Range, changed the file, or answered 416: drop the prefix, fetch it whole once more.
          logger.info({ url, why: caught.message }, 'restarting the download from zero');
          await rm(partPath, { force: true });
          row.etag = null;
          row.lastModified = null;
          restarts += 1;
          if (restarts > 3) throw new NuwaxError(ErrorCodes.E_NETWORK, `${url}: ${caught.message}, again after restarting`);
          attemptNumber -= 1;
          continue;
        }
        const error = classify(caught, url);
        if (error.code === ErrorCodes.E_ABORTED || error.code === ErrorCodes.E_DISK_FULL || error.code === ErrorCodes.E_HASH_MISMATCH || error.code === ErrorCodes.E_SIZE_MISMATCH) throw error;
        lastError = error;
        if (!retryable(error)) break;
        if (attemptNumber < retries) {
          const delay = Math.min(backoff.maxMs, backoff.baseMs * 2 ** attemptNumber) * (0.5 + Math.random() / 2);
          logger.info({ url, attempt: attemptNumber + 1, delay, code: error.code }, 'download failed, retrying');
          await sleep(delay, undefined, options.signal ? { signal: options.signal } : {}).catch(() => throwIfAborted(options.signal));
        }
      }
    }
  }
  options.store.downloads.save({ ...row, status: 'partial', error: lastError?.message ?? null });
  throw lastError ?? new NuwaxError(ErrorCodes.E_NETWORK, 'No URL to download from');
}
