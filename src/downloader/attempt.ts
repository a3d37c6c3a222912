import type { Dispatcher } from 'undici';
import { ErrorCodes, NuwaxError, toNuwaxError, UNREACHABLE_CODES } from '../errors/index.js';
import { AttemptFailure, decideResponse, type Headers, type ResponseDecision, type Validator } from './response.js';
import type { Sink } from './sink.js';
import type { RateLimiter } from './throttle.js';

export interface AttemptRequest {
  url: string;
  /** Range start (0: no Range header). */
  offset: number;
  onDisk: number;
  /** Sent as If-Range (ETag, else Last-Modified); null: no If-Range. */
  validator: Validator | null;
  expectedSize: number | null;
  sink: Sink;
  dispatcher: Dispatcher;
  signal: AbortSignal | undefined;
  stallTimeoutMs: number;
  /** Below this many bytes per second over a whole window the attempt ends with E_STALL. */
  minRate: MinRate | null;
  limiter: RateLimiter | null;
  /** Called once the response is accepted, before its first body byte is written. */
  onAccepted(decision: Extract<ResponseDecision, { kind: 'append' | 'fresh' }>): void;
  /** Called for each body chunk taken (bytes over the wire). */
  onBytes(count: number): void;
}

/** curl's --speed-limit/--speed-time: a trickle is as good as a stall. */
export interface MinRate {
  bytesPerSecond: number;
  windowMs: number;
}

/** How one request ended, when it did not fail. */
export type AttemptOutcome =
  | { kind: 'body'; start: number; total: number | null; received: number }
  | { kind: 'restart'; reason: string }
  | { kind: 'whole'; total: number };

const LOCAL_FILE_CODES = new Set([
  'ENOSPC',
  'EDQUOT',
  'EFBIG',
  'EACCES',
  'EPERM',
  'EROFS',
  'EIO',
  'EISDIR',
  'ENOTDIR',
  'EMFILE',
  'ENFILE',
  'EBADF',
]);
/** E_ABORTED, and the local disk failing (space, permissions, I/O): a retry of the same URL or a mirror cannot help. */
const CODES_NEVER_RETRIED = new Set<string>([ErrorCodes.E_ABORTED, ErrorCodes.E_DISK_FULL, ErrorCodes.E_IO]);
/** TLS trust, bad URLs and undici's redirect-loop check: a retry of the same URL cannot help. */
const NETWORK_CODES_NOT_WORTH_RETRYING =
  /^(CERT_|ERR_TLS_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_SSL_|ERR_INVALID_URL|UND_ERR_INVALID_ARG)/;

/** Maps what undici or the socket threw onto a stable code and a retry scope. */
export function classifyNetworkError(error: unknown, url: string): AttemptFailure {
  if (error instanceof AttemptFailure) return error;
  // The local disk failing (space, permissions, I/O) is not the network: no retry, no mirror helps;
  // also once wrapped (E_DISK_FULL, E_IO, or E_INTERNAL with the errno error as its cause).
  if (error instanceof NuwaxError)
    return new AttemptFailure(
      error,
      CODES_NEVER_RETRIED.has(error.code) || LOCAL_FILE_CODES.has(errnoOf(error.cause)) ? 'never' : 'same-url',
    );
  const code = errnoOf(error);
  if (LOCAL_FILE_CODES.has(code)) return new AttemptFailure(toNuwaxError(error), 'never');
  const origin = safeOrigin(url);
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new AttemptFailure(
      new NuwaxError(ErrorCodes.E_STALL, `No answer from ${origin} within the stall timeout`, {
        cause: error,
        details: { url },
      }),
      'same-url',
    );
  }
  const what = (error as Error | undefined)?.message ?? String(error);
  const message = `Download from ${origin} failed: ${code ? `${code} ` : ''}${what}`;
  const failure = new NuwaxError(ErrorCodes.E_NETWORK, message, {
    cause: error,
    details: { url, errno: code || undefined },
  });
  if (UNREACHABLE_CODES.has(code)) return new AttemptFailure(failure, 'unreachable');
  return new AttemptFailure(failure, NETWORK_CODES_NOT_WORTH_RETRYING.test(code) ? 'next-url' : 'same-url');
}

function errnoOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : '';
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** Often enough to notice a stall or a slow window within a quarter of it; at most every second. */
function watchdogPeriod(request: AttemptRequest): number {
  const rateWindow = request.minRate?.windowMs ?? Number.POSITIVE_INFINITY;
  return Math.max(10, Math.min(1000, Math.floor(request.stallTimeoutMs / 4), Math.floor(rateWindow / 4)));
}

function requestHeaders(request: AttemptRequest): Record<string, string> {
  // identity: a compressed body would not match the size and hash of the file (SPEC 7).
  const headers: Record<string, string> = { 'user-agent': 'nuwax', 'accept-encoding': 'identity' };
  if (request.offset > 0) {
    headers.range = `bytes=${request.offset}-`;
    const validator = request.validator?.etag ?? request.validator?.lastModified;
    if (validator) headers['if-range'] = validator;
  }
  return headers;
}

/**
 * One GET through undici's dispatch API: body chunks go straight from the parser into the sink
 * (no stream in between), the socket is paused while the sink is full or the rate limit says so,
 * and a watchdog aborts when no byte came for the stall timeout (SPEC 7).
 */
export function runAttempt(request: AttemptRequest): Promise<AttemptOutcome> {
  return new Promise<AttemptOutcome>((resolve, reject) => {
    const { sink, limiter, expectedSize } = request;
    let controller: Dispatcher.DispatchController | undefined;
    let settled = false;
    let accepted: Extract<ResponseDecision, { kind: 'append' | 'fresh' }> | undefined;
    let received = 0;
    let lastByteAt = Date.now();
    // The rate window restarts whenever nuwax itself holds the socket (a full sink, the rate limit).
    let windowStart = Date.now();
    let windowBytes = 0;
    let sinkFull = false;
    let rateHold: NodeJS.Timeout | undefined;

    const settle = (work: () => void) => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      clearTimeout(rateHold);
      request.signal?.removeEventListener('abort', onAbort);
      sink.onDrain = () => {};
      sink.onError = () => {};
      work();
    };
    const stop = (failure: AttemptFailure | AttemptOutcome) => {
      settle(() => (failure instanceof AttemptFailure ? reject(failure) : resolve(failure)));
      if (controller && !controller.aborted) controller.abort(new Error('nuwax: attempt settled'));
    };
    const resumeIfFree = () => {
      if (!controller || settled || sinkFull || rateHold) return;
      lastByteAt = Date.now();
      windowStart = lastByteAt;
      windowBytes = 0;
      if (controller.paused) controller.resume();
    };
    const onAbort = () => {
      stop(
        new AttemptFailure(
          new NuwaxError(ErrorCodes.E_ABORTED, 'The download was cancelled; the partial file is kept for a resume', {
            cause: request.signal?.reason,
          }),
          'never',
        ),
      );
    };
    const stalled = (error: NuwaxError) => stop(new AttemptFailure(error, 'same-url'));
    const watchdog = setInterval(() => {
      if (sinkFull || rateHold !== undefined || !accepted) return;
      const now = Date.now();
      const origin = safeOrigin(request.url);
      if (now - lastByteAt > request.stallTimeoutMs) {
        const message = `No byte from ${origin} for ${request.stallTimeoutMs} ms`;
        return stalled(new NuwaxError(ErrorCodes.E_STALL, message, { details: { url: request.url, received } }));
      }
      const minRate = request.minRate;
      if (!minRate || now - windowStart < minRate.windowMs) return;
      const rate = (windowBytes * 1000) / (now - windowStart);
      if (rate < minRate.bytesPerSecond) {
        const message =
          `${origin} sent ${windowBytes} bytes in ${((now - windowStart) / 1000).toFixed(1)} s, ` +
          `below the minimum of ${minRate.bytesPerSecond} bytes/s ([download] min_rate)`;
        const details = { url: request.url, received, rate: Math.round(rate), minRate: minRate.bytesPerSecond };
        return stalled(new NuwaxError(ErrorCodes.E_STALL, message, { details }));
      }
      windowStart = now;
      windowBytes = 0;
    }, watchdogPeriod(request));
    sink.onDrain = () => {
      sinkFull = false;
      resumeIfFree();
    };
    sink.onError = (error) => stop(new AttemptFailure(error, 'never'));
    if (request.signal?.aborted) {
      onAbort();
      return;
    }
    // A sink that failed while no attempt listened (a background fdatasync, the hashing thread in
    // a backoff) would answer every write with false: the socket paused for good, out of the stall
    // watchdog's sight, until a phase timeout said E_TIMEOUT. Its error ends the download instead.
    if (sink.failure) {
      sink.onError(sink.failure);
      return;
    }
    request.signal?.addEventListener('abort', onAbort, { once: true });

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(control) {
        controller = control;
        if (settled) control.abort(new Error('nuwax: attempt settled'));
      },
      onResponseStart(control, status, headers) {
        controller = control;
        lastByteAt = Date.now();
        const decision = decideResponse({
          status,
          headers: headers as Headers,
          url: request.url,
          offset: request.offset,
          onDisk: request.onDisk,
          expectedSize,
          validator: request.validator,
        });
        if (decision.kind === 'fail') return stop(decision.failure);
        if (decision.kind === 'restart' || decision.kind === 'whole') return stop(decision);
        accepted = decision;
        windowStart = Date.now();
        request.onAccepted(decision);
      },
      onResponseData(control, chunk) {
        if (settled || !accepted) return;
        lastByteAt = Date.now();
        const start = accepted.kind === 'append' ? accepted.start : 0;
        if (expectedSize !== null && start + received + chunk.length > expectedSize) {
          const error = new NuwaxError(
            ErrorCodes.E_SIZE_MISMATCH,
            `${request.url} sent more than the ${expectedSize} bytes expected`,
            { details: { expected: expectedSize, url: request.url } },
          );
          return stop(new AttemptFailure(error, 'next-url'));
        }
        received += chunk.length;
        windowBytes += chunk.length;
        request.onBytes(chunk.length);
        if (!sink.write(chunk)) {
          sinkFull = true;
          control.pause();
        }
        const wait = limiter?.take(chunk.length) ?? 0;
        if (wait > 0 && !rateHold) {
          control.pause();
          rateHold = setTimeout(() => {
            rateHold = undefined;
            resumeIfFree();
          }, wait);
        }
      },
      onResponseEnd() {
        if (!accepted) return stop({ kind: 'restart', reason: 'the response ended before it was accepted' });
        const start = accepted.kind === 'append' ? accepted.start : 0;
        stop({ kind: 'body', start, total: accepted.total, received });
      },
      onResponseError(_control, error) {
        stop(classifyNetworkError(error, request.url));
      },
    };
    const target = new URL(request.url);
    request.dispatcher.dispatch(
      {
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: 'GET',
        headers: requestHeaders(request),
        headersTimeout: request.stallTimeoutMs,
        bodyTimeout: 0,
      },
      handler,
    );
  });
}
