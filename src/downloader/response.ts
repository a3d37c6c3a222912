import { ErrorCodes, NuwaxError } from '../errors/index.js';

/**
 * What an attempt's failure means for the loop in download.ts: try the same URL again (after a
 * backoff), go to the next mirror at once and maybe come back in the next round (the host cannot
 * be reached), go to the next mirror for good, or stop everything.
 */
export type RetryScope = 'same-url' | 'unreachable' | 'next-url' | 'never';

/** A failed attempt: the error as it will be reported, with what it means for the retry loop. */
export class AttemptFailure extends NuwaxError {
  constructor(
    readonly error: NuwaxError,
    readonly scope: RetryScope,
    readonly retryAfterMs: number | null = null,
  ) {
    super(error.code, error.message, { cause: error, details: error.details });
  }
}

export interface Validator {
  etag: string | null;
  lastModified: string | null;
}

/** The decision taken on a response's status and headers, before any body byte is written. */
export type ResponseDecision =
  /** 206 that continues the partial file exactly at the offset. */
  | { kind: 'append'; start: number; total: number | null; validator: Validator }
  /** 200: the whole file; whatever is on disk is truncated first (a server that ignores Range, or a changed file). */
  | { kind: 'fresh'; total: number | null; validator: Validator }
  /** The partial file cannot be continued from this response: drop it and ask again from zero. */
  | { kind: 'restart'; reason: string }
  /** 416 and the file on disk already has the full length: verify it as it is. */
  | { kind: 'whole'; total: number }
  | { kind: 'fail'; failure: AttemptFailure };

export type Headers = Record<string, string | string[] | undefined>;

export function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** "bytes 100-199/1000" → {first, last, total}; "bytes *\/1000" → {total}. */
export function parseContentRange(
  value: string | undefined,
): { first: number | null; last: number | null; total: number | null } | null {
  const match = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(value?.trim() ?? '');
  if (!match) return null;
  return {
    first: match[1] === undefined ? null : Number(match[1]),
    last: match[2] === undefined ? null : Number(match[2]),
    total: match[3] === '*' ? null : Number(match[3]),
  };
}

/** Retry-After in seconds or as an HTTP date, in milliseconds from now. */
function retryAfter(headers: Headers): number | null {
  const value = header(headers, 'retry-after');
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

function httpFailure(status: number, url: string, headers: Headers): AttemptFailure {
  // 408, 425, 429 and 5xx are the server's trouble and may pass; other 4xx (404, 403, ...) will not
  // change on a retry: fail at once for this URL (no retries), a mirror may still have it.
  const transient = status === 408 || status === 425 || status === 429 || status >= 500;
  const redirect = status >= 300 && status < 400;
  const message = redirect
    ? `Too many redirects (or a redirect without a location) from ${url} (HTTP ${status})`
    : `The server answered HTTP ${status} for ${url}`;
  const error = new NuwaxError(ErrorCodes.E_HTTP, message, { details: { statusCode: status, url } });
  return new AttemptFailure(error, transient ? 'same-url' : 'next-url', transient ? retryAfter(headers) : null);
}

function sizeFailure(message: string, url: string, expected: number, announced: number): AttemptFailure {
  const error = new NuwaxError(ErrorCodes.E_SIZE_MISMATCH, message, { details: { expected, announced, url } });
  return new AttemptFailure(error, 'next-url');
}

export interface ResponseFacts {
  status: number;
  headers: Headers;
  url: string;
  /** The Range start sent (0: no Range header). */
  offset: number;
  /** Bytes of the partial file on disk. */
  onDisk: number;
  expectedSize: number | null;
  /** The validator the partial file was fetched under, when the request carried If-Range. */
  validator: Validator | null;
}

function validatorOf(headers: Headers): Validator {
  return { etag: header(headers, 'etag') ?? null, lastModified: header(headers, 'last-modified') ?? null };
}

/** SPEC 7: a server that ignores Range, changes the file, or sends a wrong length is detected here. */
export function decideResponse(facts: ResponseFacts): ResponseDecision {
  const { status, headers, url, offset, expectedSize } = facts;
  if (status === 200) {
    const length = header(headers, 'content-length');
    const total = length === undefined ? null : Number(length);
    if (expectedSize !== null && total !== null && total !== expectedSize) {
      return {
        kind: 'fail',
        failure: sizeFailure(
          `${url} announces ${total} bytes, the manifest says ${expectedSize}`,
          url,
          expectedSize,
          total,
        ),
      };
    }
    return { kind: 'fresh', total: total ?? expectedSize, validator: validatorOf(headers) };
  }
  if (status === 206) return decidePartial(facts);
  if (status === 416) {
    const range = parseContentRange(header(headers, 'content-range'));
    const total = range?.total ?? expectedSize;
    const whole = total !== null && facts.onDisk === total && (expectedSize === null || expectedSize === total);
    return whole
      ? { kind: 'whole', total }
      : {
          kind: 'restart',
          reason: `HTTP 416 for a Range from ${offset} (the server's file is ${total ?? 'of unknown size'})`,
        };
  }
  return { kind: 'fail', failure: httpFailure(status, url, headers) };
}

function decidePartial(facts: ResponseFacts): ResponseDecision {
  const { headers, url, offset, expectedSize } = facts;
  const rangeHeader = header(headers, 'content-range');
  const range = parseContentRange(rangeHeader);
  if (!range || range.first !== offset) {
    return { kind: 'restart', reason: `Content-Range "${rangeHeader ?? ''}" from ${url} does not start at ${offset}` };
  }
  if (expectedSize !== null && range.total !== null && range.total !== expectedSize) {
    return {
      kind: 'fail',
      failure: sizeFailure(
        `${url} serves a file of ${range.total} bytes, the manifest says ${expectedSize}`,
        url,
        expectedSize,
        range.total,
      ),
    };
  }
  const now = validatorOf(headers);
  const before = facts.validator;
  // If-Range should have turned a changed file into a 200; a server that answers 206 anyway is caught here.
  if (before?.etag && now.etag && before.etag !== now.etag)
    return { kind: 'restart', reason: `the ETag changed from ${before.etag} to ${now.etag}` };
  if (before && !before.etag && before.lastModified && now.lastModified && before.lastModified !== now.lastModified) {
    return { kind: 'restart', reason: `Last-Modified changed from ${before.lastModified} to ${now.lastModified}` };
  }
  return {
    kind: 'append',
    start: offset,
    total: range.total ?? expectedSize,
    validator: {
      etag: now.etag ?? before?.etag ?? null,
      lastModified: now.lastModified ?? before?.lastModified ?? null,
    },
  };
}
