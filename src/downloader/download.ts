import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Dispatcher, getGlobalDispatcher, interceptors } from '../http/index.js';
import { createProgressReporter } from '../events/index.js';
import { ErrorCodes, NuwaxError, throwIfAborted } from '../errors/index.js';
import { ensureFreeSpace } from '../fsutil/index.js';
import type { Logger } from '../log/index.js';
import type { DownloadRow } from '../state/index.js';
import { type AttemptOutcome, classifyNetworkError, runAttempt } from './attempt.js';
import { createSink, defaultEngine, type Engine } from './engine.js';
import {
  commitDownload,
  finalPathFor,
  findCompletedDownload,
  hashPrefix,
  normaliseSha256,
  partialPathFor,
  sizeOf,
} from './files.js';
import { AttemptFailure, type Validator } from './response.js';
import { COLLECT_EVERY_BYTES, collectSocketGarbage } from './runtime.js';
import type { Sink } from './sink.js';
import { backoffDelay, RateLimiter } from './throttle.js';
import type { DownloadOptions, DownloadResult, UnverifiedDownloadOptions } from './types.js';

/** Free space kept beyond what the download still needs (SPEC 7: a free-space check before start). */
const SPACE_MARGIN = 32 * 1024 * 1024;
/** The row's offset is written at most this often: a kill -9 loses nothing on disk, only this much of the row. */
const PERSIST_EVERY_MS = 1000;
/** An attempt that wrote at least this much does not count against the retries (a flaky but moving link). */
const PROGRESS_RESETS_RETRIES = 1024 * 1024;
/** Restarts from zero per URL (200 to a Range, changed ETag, bad Content-Range, 416) before giving up on it. */
const MAX_RESTARTS = 3;
/** curl's --speed-limit 1024 --speed-time 60: far below any link a release is fetched over. */
export const DEFAULT_MIN_RATE = { bytesPerSecond: 1024, windowMs: 60_000 };

type Reporter = ReturnType<typeof createProgressReporter>;
/** What the download logs through; pino's silent logger would load pino, and its memory, for nothing. */
type DownloadLogger = Pick<Logger, 'debug' | 'info' | 'warn'>;
const SILENT: DownloadLogger = { debug() {}, info() {}, warn() {} };

function unverifiedKey(url: string): string {
  return createHash('sha256').update(`unverified:${url}`).digest('hex');
}

/**
 * A completed file with this hash is used as it is; else one DownloadJob. `engine` is for the
 * tests and the benchmark, which measure each; everyone else gets defaultEngine's choice.
 */
export async function downloadFile(
  options: DownloadOptions | UnverifiedDownloadOptions,
  engine?: Engine,
): Promise<DownloadResult> {
  // Without a hash there is nothing to find an earlier copy by: always fetched (allow_unverified).
  if (options.sha256 === null) return new DownloadJob(options, engine).run();
  const sha256 = normaliseSha256(options.sha256);
  const completed = await findCompletedDownload(options.store, sha256);
  if (completed) {
    const row = options.store.downloads.findByHash(sha256)!;
    return {
      path: completed,
      size: (await sizeOf(completed)) ?? 0,
      sha256,
      reused: true,
      resumedFrom: 0,
      fetchedBytes: 0,
      url: row.url,
    };
  }
  return new DownloadJob(options, engine).run();
}

/** One call of download(): the state a retry, a restart or a mirror switch carries on with. */
export class DownloadJob {
  /** The expected hash, or for an unverified package a key derived from its URL (names its files and row). */
  readonly sha256: string;
  private readonly verified: boolean;
  readonly partPath: string;
  readonly finalPath: string;
  private readonly expectedSize: number | null;
  private readonly logger: DownloadLogger;
  private readonly dispatcher: Dispatcher;
  private readonly limiter: RateLimiter | null;
  private row: DownloadRow;
  private sink: Sink | undefined;
  private reporter: Reporter | undefined;
  private fetched = 0;
  /** Where the file stands by the bytes received (the sink's `written` lags by the slots in flight). */
  private position = 0;
  private resumedFrom = 0;
  private sinceCollect = 0;
  private persistedAt = 0;
  private mismatchRestarted = false;

  constructor(
    private readonly options: DownloadOptions | UnverifiedDownloadOptions,
    private readonly engine?: Engine,
  ) {
    if (options.urls.length === 0) throw new NuwaxError(ErrorCodes.E_NETWORK, 'No URL to download from');
    this.verified = options.sha256 !== null;
    this.sha256 = options.sha256 !== null ? normaliseSha256(options.sha256) : unverifiedKey(options.urls[0]!);
    this.expectedSize = options.size ?? null;
    this.logger = options.logger ?? SILENT;
    this.partPath = partialPathFor(options.directory, this.sha256);
    this.finalPath = finalPathFor(options.directory, this.sha256, options.urls, options.fileName);
    this.dispatcher = (options.dispatcher ?? getGlobalDispatcher()).compose(
      interceptors.redirect({ maxRedirections: options.maxRedirections ?? 5 }),
    );
    this.limiter = options.rateLimit && options.rateLimit > 0 ? new RateLimiter(options.rateLimit) : null;
    const existing = options.store.downloads.findByHash(this.sha256);
    this.row = existing ?? {
      id: 0,
      url: options.urls[0]!,
      path: this.finalPath,
      size: this.expectedSize,
      hash: this.sha256,
      offset: 0,
      etag: null,
      lastModified: null,
      hashState: null,
      status: 'partial',
      error: null,
      createdAt: '',
      updatedAt: '',
    };
  }

  async run(): Promise<DownloadResult> {
    await mkdir(this.options.directory, { recursive: true });
    const already = await this.reuseFinalFile();
    if (already) return already;
    const onDisk = await this.resumableBytes();
    if (this.expectedSize !== null) {
      await ensureFreeSpace(
        this.options.directory,
        Math.max(0, this.expectedSize - onDisk) + SPACE_MARGIN,
        'the download',
      );
    }
    this.resumedFrom = onDisk;
    this.saveRow({
      status: 'partial',
      path: this.finalPath,
      size: this.expectedSize ?? this.row.size,
      offset: onDisk,
      error: null,
    });
    this.sink = createSink(this.partPath, this.engine ?? defaultEngine(onDisk));
    try {
      await this.sink.prepare(onDisk);
      return await this.fetchFromMirrors();
    } finally {
      await this.sink.close();
    }
  }

  /** A final file left by a crash between the rename and the row: hash it once, keep it if it matches. */
  private async reuseFinalFile(): Promise<DownloadResult | undefined> {
    const size = await sizeOf(this.finalPath);
    if (size === null) return undefined;
    if (!this.verified) {
      // Nothing proves an earlier copy is the file the server has now: fetch it again.
      await rm(this.finalPath, { force: true });
      return undefined;
    }
    const matches =
      (this.expectedSize === null || size === this.expectedSize) &&
      (await hashPrefix(this.finalPath, size, this.options.signal)).digest('hex') === this.sha256;
    if (!matches) {
      this.logger.warn({ path: this.finalPath }, 'a file with the final name does not match its hash; deleting it');
      await rm(this.finalPath, { force: true });
      return undefined;
    }
    this.saveRow({ status: 'complete', path: this.finalPath, size, offset: size, error: null });
    return {
      path: this.finalPath,
      size,
      sha256: this.sha256,
      reused: true,
      resumedFrom: 0,
      fetchedBytes: 0,
      url: this.row.url,
    };
  }

  /** Bytes of the partial file worth keeping: only with a row that says how they were fetched. */
  private async resumableBytes(): Promise<number> {
    const onDisk = (await sizeOf(this.partPath)) ?? 0;
    const known = this.row.id !== 0 && this.row.status === 'partial';
    const tooLong = this.expectedSize !== null && onDisk > this.expectedSize;
    if (onDisk > 0 && (!known || tooLong)) {
      this.logger.info({ path: this.partPath, onDisk }, 'discarding a partial file that cannot be resumed');
      return 0;
    }
    return onDisk;
  }

  /**
   * Rounds over the URLs: each is tried until it succeeds, fails for good or spends its retries; a
   * host that cannot be reached passes to the next URL at once. Only going round again waits.
   */
  private async fetchFromMirrors(): Promise<DownloadResult> {
    let lastFailure: AttemptFailure | undefined;
    let attempts = 0;
    let candidates = [...this.options.urls];
    const report = (failure: AttemptFailure, count: number) => {
      lastFailure = failure;
      attempts += count;
    };
    for (let round = 0; ; round += 1) {
      const unreachable: string[] = [];
      for (const url of candidates) {
        const result = await this.fetchFrom(url, report);
        if (result === 'unreachable') unreachable.push(url);
        else if (result) return result;
      }
      if (unreachable.length === 0 || round >= (this.options.retries ?? 5)) break;
      candidates = unreachable;
      const delay = backoffDelay(round, this.backoff());
      this.logger.info({ urls: candidates, round, delay }, 'no server could be reached; trying them again');
      await this.pause(delay);
    }
    throw await this.giveUp(lastFailure, attempts);
  }

  private async pause(delay: number): Promise<void> {
    const signal = this.options.signal;
    await sleep(delay, undefined, { signal }).catch(() => throwIfAborted(signal));
  }

  /** Tries one URL until it succeeds, fails for good, or its retries are spent (then undefined). */
  private async fetchFrom(
    url: string,
    report: (failure: AttemptFailure, attempts: number) => void,
  ): Promise<DownloadResult | 'unreachable' | undefined> {
    const retries = this.options.retries ?? 5;
    let failures = 0;
    let restarts = 0;
    let attempts = 0;
    for (;;) {
      throwIfAborted(this.options.signal);
      const before = this.sink!.written;
      attempts += 1;
      try {
        const outcome = await this.attempt(url);
        if (outcome === 'again') {
          restarts += 1;
          if (restarts <= MAX_RESTARTS) continue;
          throw new AttemptFailure(
            new NuwaxError(
              ErrorCodes.E_NETWORK,
              `${url} kept answering Range requests wrongly; gave up after ${restarts} restarts`,
              { details: { url } },
            ),
            'next-url',
          );
        }
        return outcome;
      } catch (caught) {
        const failure = await this.afterFailure(caught, url);
        report(failure, attempts);
        attempts = 0;
        if (failure.scope === 'never') throw failure.error;
        if (failure.scope === 'next-url') return undefined;
        if (failure.scope === 'unreachable') return 'unreachable';
        failures = this.sink!.written - before >= PROGRESS_RESETS_RETRIES ? 1 : failures + 1;
        if (failures > retries) return undefined;
        const delay = Math.max(
          backoffDelay(failures - 1, this.backoff()),
          Math.min(failure.retryAfterMs ?? 0, this.backoff().maxMs),
        );
        this.logger.info({ url, code: failure.error.code, failures, delay }, 'download attempt failed; retrying');
        await this.pause(delay);
      }
    }
  }

  private minRate(): { bytesPerSecond: number; windowMs: number } | null {
    const minRate = this.options.minRate ?? DEFAULT_MIN_RATE;
    return minRate.bytesPerSecond > 0 && minRate.windowMs > 0 ? minRate : null;
  }

  private backoff(): { baseMs: number; maxMs: number } {
    return this.options.backoff ?? { baseMs: 500, maxMs: 30_000 };
  }

  /** One request; 'again' when the partial file had to be dropped and a new request from zero is due. */
  private async attempt(url: string): Promise<DownloadResult | 'again'> {
    const sink = this.sink!;
    const onDisk = sink.written;
    if (this.expectedSize !== null && onDisk === this.expectedSize) return this.verify(url, 'whole');
    const validator = this.validatorFor(url);
    const offset = onDisk > 0 && (validator || this.expectedSize !== null) ? onDisk : 0;
    if (offset === 0 && onDisk > 0) await sink.prepare(0);
    const outcome = await runAttempt({
      url,
      offset,
      onDisk,
      validator,
      expectedSize: this.expectedSize,
      sink,
      dispatcher: this.dispatcher,
      signal: this.options.signal,
      stallTimeoutMs: this.options.stallTimeoutMs ?? 30_000,
      minRate: this.minRate(),
      limiter: this.limiter,
      onAccepted: (decision) => this.accepted(url, offset, decision),
      onBytes: (count) => this.received(count),
    });
    return this.settle(url, outcome);
  }

  /** If-Range only with the validator this very URL gave; a mirror's partial file is resumed on size and hash alone. */
  private validatorFor(url: string): Validator | null {
    if (this.row.url !== url || (!this.row.etag && !this.row.lastModified)) return null;
    return { etag: this.row.etag, lastModified: this.row.lastModified };
  }

  private accepted(
    url: string,
    offset: number,
    decision: { kind: 'append' | 'fresh'; total: number | null; validator: Validator },
  ): void {
    if (decision.kind === 'fresh' && offset > 0) {
      // SPEC 7: the server ignored Range or the file changed (If-Range): the body is the whole file,
      // written from zero over a truncated partial file, never appended to it.
      this.logger.info({ url, offset }, 'the server sent the whole file to a Range request; restarting from zero');
      this.sink!.restart();
    }
    const start = decision.kind === 'append' ? offset : 0;
    this.saveRow({
      url,
      etag: decision.validator.etag,
      lastModified: decision.validator.lastModified,
      offset: start,
      size: this.expectedSize ?? decision.total,
      status: 'partial',
    });
    this.position = start;
    this.reporter ??= createProgressReporter(
      'downloading',
      this.expectedSize ?? decision.total,
      this.options.onProgress,
    );
    this.reporter.update(start);
  }

  private received(count: number): void {
    this.fetched += count;
    this.position += count;
    this.sinceCollect += count;
    if (this.sinceCollect >= COLLECT_EVERY_BYTES) {
      this.sinceCollect = 0;
      collectSocketGarbage();
    }
    const now = Date.now();
    if (now - this.persistedAt >= PERSIST_EVERY_MS) {
      this.persistedAt = now;
      this.options.store.downloads.updateProgress(this.sha256, this.sink!.written);
    }
    this.reporter?.update(this.position);
  }

  private async settle(url: string, outcome: AttemptOutcome): Promise<DownloadResult | 'again'> {
    const sink = this.sink!;
    if (outcome.kind === 'restart') {
      this.logger.info({ url, reason: outcome.reason }, 'the partial file cannot be continued; restarting from zero');
      await sink.prepare(0);
      this.saveRow({ offset: 0, etag: null, lastModified: null });
      return 'again';
    }
    await sink.flush();
    if (outcome.kind === 'body' && this.expectedSize !== null && sink.written < this.expectedSize) {
      const error = new NuwaxError(
        ErrorCodes.E_NETWORK,
        `The body from ${url} ended at ${sink.written} of ${this.expectedSize} bytes`,
        { details: { url, received: sink.written, expected: this.expectedSize } },
      );
      throw new AttemptFailure(error, 'same-url');
    }
    return this.verify(url, outcome.kind);
  }

  /** Size and hash, then fsync and rename, then the row (SPEC 7); a mismatch deletes the bytes. */
  private async verify(url: string, how: 'body' | 'whole'): Promise<DownloadResult | 'again'> {
    const sink = this.sink!;
    // The fsync of the last dirty pages overlaps the end of the hash (a following thread may lag);
    // it is wasted only when the hash does not match, and then the bytes are deleted anyway.
    // A resume's digest may wait for a thread still hashing a long prefix: an abort does not (SIGTERM
    // over a slow disk); the partial file and its row stay for a resume (afterFailure).
    const [hashed, synced] = await Promise.allSettled([unlessAborted(sink.digest(), this.options.signal), sink.sync()]);
    if (hashed.status === 'rejected') throw hashed.reason;
    const actual = hashed.value;
    const size = sink.written;
    if (this.verified && actual !== this.sha256) {
      await sink.prepare(0);
      this.saveRow({ offset: 0, etag: null, lastModified: null });
      // A resumed file may carry a prefix spoilt by a crash: fetch it once whole before blaming the server.
      if ((this.resumedFrom > 0 || how === 'whole') && !this.mismatchRestarted) {
        this.mismatchRestarted = true;
        this.logger.warn(
          { url, expected: this.sha256, actual },
          'a resumed download does not match its hash; fetching it again from zero',
        );
        return 'again';
      }
      const error = new NuwaxError(
        ErrorCodes.E_HASH_MISMATCH,
        `The file from ${url} has SHA-256 ${actual}, expected ${this.sha256}; it was deleted`,
        { details: { expected: this.sha256, actual, url, size } },
      );
      throw new AttemptFailure(error, 'next-url');
    }
    if (synced.status === 'rejected') throw synced.reason;
    await sink.close();
    await commitDownload(this.partPath, this.finalPath);
    this.saveRow({ url, path: this.finalPath, size, offset: size, status: 'complete', error: null, hashState: null });
    (this.reporter ?? createProgressReporter('downloading', size, this.options.onProgress)).finish(size);
    return {
      path: this.finalPath,
      size,
      sha256: actual,
      reused: false,
      resumedFrom: this.resumedFrom,
      fetchedBytes: this.fetched,
      url,
    };
  }

  /** After a failed attempt: what was received is on disk and in the row, ready for a resume; what it means. */
  private async afterFailure(caught: unknown, url: string): Promise<AttemptFailure> {
    let failure = classifyNetworkError(caught, url);
    const sink = this.sink!;
    await sink
      .flush()
      .catch((error: unknown) => this.logger.debug({ err: error }, 'flush after a failed attempt failed'));
    // A sink that failed (in the attempt, its settle, or this flush) fails every write after it:
    // its disk error is what happened, and no retry or mirror can help (the hang to E_TIMEOUT).
    if (sink.failure && failure.scope !== 'never') failure = new AttemptFailure(sink.failure, 'never');
    this.saveRow({ offset: sink.written, error: failure.error.message });
    return failure;
  }

  /** Every URL failed: the partial file (if any) stays for a later resume; the error says why. */
  private async giveUp(last: AttemptFailure | undefined, attempts: number): Promise<NuwaxError> {
    const written = this.sink!.written;
    await this.sink!.close();
    if (written === 0) await rm(this.partPath, { force: true });
    let error = last?.error ?? new NuwaxError(ErrorCodes.E_NETWORK, 'The download failed');
    const retried: string[] = [ErrorCodes.E_HTTP, ErrorCodes.E_NETWORK, ErrorCodes.E_STALL];
    if ((last?.scope === 'same-url' || last?.scope === 'unreachable') && retried.includes(error.code)) {
      // A refused HTTP status after its retries is a network failure; a stall stays a stall.
      const code = error.code === ErrorCodes.E_STALL ? ErrorCodes.E_STALL : ErrorCodes.E_NETWORK;
      const kept = written > 0 ? `; the ${written} bytes received are kept for a resume` : '';
      error = new NuwaxError(code, `Gave up after ${attempts} attempts: ${error.message}${kept}`, {
        cause: error.code === ErrorCodes.E_HTTP ? error : error.cause,
        details: { ...error.details, attempts },
      });
    }
    this.saveRow({ status: written > 0 ? 'partial' : 'failed', offset: written, error: error.message });
    return error;
  }

  private saveRow(change: Partial<DownloadRow>): void {
    this.row = this.options.store.downloads.save({ ...this.row, ...change, hash: this.sha256 });
  }
}

/** `work`, unless the signal fires first (E_ABORTED); `work` then goes on, and its outcome is dropped. */
function unlessAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () =>
      reject(
        new NuwaxError(
          ErrorCodes.E_ABORTED,
          'The download was cancelled while its hash was checked; the partial file is kept for a resume',
          { cause: signal.reason },
        ),
      );
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
