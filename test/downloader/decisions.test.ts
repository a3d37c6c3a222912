import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyNetworkError } from '../../src/downloader/attempt.js';
import { decideResponse, parseContentRange, type ResponseFacts } from '../../src/downloader/response.js';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../../src/errors/index.js';
import { backoffDelay, RateLimiter } from '../../src/downloader/throttle.js';

const base: ResponseFacts = {
  status: 206,
  headers: {},
  url: 'http://x/f',
  offset: 100,
  onDisk: 100,
  expectedSize: 1000,
  validator: { etag: '"a"', lastModified: null },
};

describe('downloader decisions (pure)', () => {
  const rows: Array<[string, Partial<ResponseFacts>, string]> = [
    ['206 at the offset appends', { headers: { 'content-range': 'bytes 100-999/1000', etag: '"a"' } }, 'append'],
    ['206 elsewhere restarts', { headers: { 'content-range': 'bytes 0-999/1000' } }, 'restart'],
    ['206 without Content-Range restarts', { headers: {} }, 'restart'],
    ['206 under another ETag restarts', { headers: { 'content-range': 'bytes 100-999/1000', etag: '"b"' } }, 'restart'],
    ['206 for a file of another size fails', { headers: { 'content-range': 'bytes 100-1999/2000' } }, 'fail'],
    ['200 to a Range starts fresh', { status: 200, headers: { 'content-length': '1000' } }, 'fresh'],
    ['200 of another length fails', { status: 200, headers: { 'content-length': '999' } }, 'fail'],
    [
      '416 with the whole file on disk is whole',
      { status: 416, onDisk: 1000, offset: 1000, headers: { 'content-range': 'bytes */1000' } },
      'whole',
    ],
    ['416 with part of the file restarts', { status: 416, headers: { 'content-range': 'bytes */1000' } }, 'restart'],
    ['404 fails', { status: 404 }, 'fail'],
    ['503 fails', { status: 503 }, 'fail'],
  ];
  for (const [name, change, kind] of rows) {
    test(name, () => assert.equal(decideResponse({ ...base, ...change }).kind, kind));
  }

  test('only 408, 425, 429 and 5xx are retried on the same URL; other 4xx go to the next mirror', () => {
    const scope = (status: number) => {
      const decision = decideResponse({ ...base, status });
      return decision.kind === 'fail' ? decision.failure.scope : decision.kind;
    };
    assert.deepEqual([400, 401, 403, 404, 410, 408, 429, 500, 502, 503].map(scope), [
      'next-url',
      'next-url',
      'next-url',
      'next-url',
      'next-url',
      'same-url',
      'same-url',
      'same-url',
      'same-url',
      'same-url',
    ]);
  });

  test('a local disk error is never retried, also once wrapped (EIO and EROFS become E_IO); the network is', () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    const rows: Array<[unknown, string]> = [
      [errno('EIO'), 'never'],
      [toNuwaxError(errno('EIO')), 'never'],
      [toNuwaxError(errno('EROFS')), 'never'],
      [toNuwaxError(errno('ENOSPC')), 'never'],
      [new NuwaxError(ErrorCodes.E_ABORTED, 'cancelled'), 'never'],
      [new NuwaxError(ErrorCodes.E_INTERNAL, 'no errno'), 'same-url'],
      [toNuwaxError(errno('ECONNRESET')), 'same-url'],
      [errno('ECONNRESET'), 'same-url'],
    ];
    assert.deepEqual(
      ['EIO', 'EROFS', 'ENOSPC'].map((code) => toNuwaxError(errno(code)).code),
      ['E_IO', 'E_IO', 'E_DISK_FULL'],
    );
    assert.deepEqual(
      rows.map(([error]) => classifyNetworkError(error, 'http://x/f').scope),
      rows.map(([, scope]) => scope),
    );
  });

  test('Content-Range is parsed, with unknown totals and unsatisfied ranges', () => {
    assert.deepEqual(parseContentRange('bytes 5-9/10'), { first: 5, last: 9, total: 10 });
    assert.deepEqual(parseContentRange('bytes 5-9/*'), { first: 5, last: 9, total: null });
    assert.deepEqual(parseContentRange('bytes */10'), { first: null, last: null, total: 10 });
    assert.equal(parseContentRange('items 1-2/3'), null);
  });

  test('backoff doubles, is capped, and keeps a jitter between half and all of the step', () => {
    const backoff = { baseMs: 100, maxMs: 1000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 10].map((retry) => backoffDelay(retry, backoff, () => 1)),
      [100, 200, 400, 800, 1000, 1000],
    );
    assert.deepEqual(
      [0, 3, 10].map((retry) => backoffDelay(retry, backoff, () => 0)),
      [50, 400, 500],
    );
  });

  test('the rate limiter asks to wait once the budget is spent, and saves at most a second of it', () => {
    let now = 0;
    const limiter = new RateLimiter(1000, () => now);
    assert.equal(limiter.take(500), 500);
    now = 500;
    assert.equal(limiter.take(500), 500);
    now = 10_000;
    assert.equal(limiter.take(1000), 0, 'one saved second');
    assert.equal(limiter.take(1000), 1000);
  });
});
