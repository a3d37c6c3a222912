import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { download } from '../../src/downloader/index.js';
import type { ProgressEvent } from '../../src/events/index.js';
import { MisbehavingServer } from '../helpers/misbehaving-server.js';
import { abortThenResume, assertCompleteFile, content, filesIn, scenario, sha256 } from './fixture.js';

interface CodedError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

describe('downloader (SPEC 7): failures, mirrors, limits', () => {
  for (const status of [404, 403]) {
    test(`HTTP ${status} fails at once with E_HTTP, without retries, leaving no file`, () =>
      scenario([{ status }], async ({ server, options, store, directory }) => {
        await assert.rejects(
          download(options),
          (error: CodedError) => error.code === 'E_HTTP' && error.details?.statusCode === status,
        );
        assert.equal(server.requests.length, 1);
        assert.deepEqual(await filesIn(directory), []);
        assert.equal(store.downloads.findByHash(sha256)?.status, 'failed');
      }));
  }

  test('5xx and connection resets are retried with backoff, then the download completes', () =>
    scenario([{ status: 503 }, 'reset', { status: 500 }], async ({ server, options }) => {
      const result = await download(options);
      await assertCompleteFile(result.path);
      assert.equal(server.requests.length, 4);
    }));

  test('exhausted retries on 5xx fail with E_NETWORK naming the attempts; nothing is kept', () =>
    scenario([], async ({ server, options, store }) => {
      server.fallback = { status: 502 };
      await assert.rejects(
        download({ ...options, retries: 2 }),
        (error: CodedError) =>
          error.code === 'E_NETWORK' && error.details?.attempts === 3 && error.details?.statusCode === 502,
      );
      assert.equal(server.requests.length, 3);
      assert.equal(store.downloads.findByHash(sha256)?.status, 'failed');
    }));

  test('Retry-After of a 429 is honoured, bounded by the backoff maximum', () =>
    scenario([{ status: 429, retryAfter: 1 }], async ({ server, options }) => {
      const started = Date.now();
      const result = await download({ ...options, backoff: { baseMs: 5, maxMs: 300 } });
      await assertCompleteFile(result.path);
      assert.ok(Date.now() - started >= 250, 'waited about the capped Retry-After');
      assert.equal(server.requests.length, 2);
    }));

  test('when the primary keeps failing the next mirror is tried, resuming the partial file', () =>
    scenario(['cut-half'], async ({ server, options }) => {
      server.fallback = { status: 503 };
      const mirror = await new MisbehavingServer(content).start();
      mirror.etag = '"mirror"';
      try {
        const result = await download({ ...options, urls: [server.url, mirror.url], retries: 1 });
        await assertCompleteFile(result.path);
        assert.equal(result.url, mirror.url);
        assert.equal(server.requests.length, 2, 'the cut counts as the first failure, the 503 spends the one retry');
        assert.equal(
          mirror.requests[0]!.range,
          `bytes=${Math.floor(content.length / 2)}-`,
          'the mirror continues the partial file',
        );
        assert.equal(
          mirror.requests[0]!.ifRange,
          undefined,
          "the primary's ETag means nothing to a mirror; size and hash guard the resume",
        );
      } finally {
        await mirror.stop();
      }
    }));

  test('redirects are followed', () =>
    scenario(['redirect'], async ({ server, options }) => {
      const result = await download(options);
      await assertCompleteFile(result.path);
      assert.deepEqual(
        server.requests.map((request) => request.url),
        ['/file.tar.gz', '/moved/file.tar.gz'],
      );
    }));

  test('redirects are bounded: a loop fails with E_HTTP after maxRedirections', () =>
    scenario([], async ({ server, options }) => {
      server.fallback = 'redirect-loop';
      await assert.rejects(
        download({ ...options, maxRedirections: 3 }),
        (error: CodedError) => error.code === 'E_HTTP' && error.details?.statusCode === 302,
      );
      assert.equal(server.requests.length, 4);
    }));

  test('a stall with no bytes times out with E_STALL and is retried', () =>
    scenario(['stall'], async ({ server, options }) => {
      const result = await download(options);
      await assertCompleteFile(result.path);
      assert.equal(server.requests.length, 2);
    }));

  test('a server that only stalls fails with E_STALL once the retries are spent', () =>
    scenario([], async ({ server, options }) => {
      server.fallback = 'stall';
      await assert.rejects(download({ ...options, retries: 1, stallTimeoutMs: 200 }), { code: 'E_STALL' });
      assert.equal(server.requests.length, 2);
    }));

  test('a body announced longer than the expected size is refused with E_SIZE_MISMATCH before a byte is written', () =>
    scenario(['longer-announced'], async ({ server, options, directory }) => {
      await assert.rejects(
        download(options),
        (error: CodedError) => error.code === 'E_SIZE_MISMATCH' && error.details?.announced === content.length + 10,
      );
      assert.equal(server.requests.length, 1);
      assert.deepEqual(await filesIn(directory), []);
    }));

  test('a body without a length that runs past the expected size is cut there with E_SIZE_MISMATCH', () =>
    scenario(['chunked-longer'], async ({ options, partPath }) => {
      await assert.rejects(download(options), { code: 'E_SIZE_MISMATCH' });
      assert.ok((await stat(partPath)).size <= content.length, 'not a byte past the expected size was written');
    }));

  test('a final hash mismatch deletes the file and names expected and actual', () =>
    scenario([], async ({ options, store, directory }) => {
      const wrong = 'f'.repeat(64);
      await assert.rejects(
        download({ ...options, sha256: wrong }),
        (error: CodedError) =>
          error.code === 'E_HASH_MISMATCH' &&
          error.details?.expected === wrong &&
          error.details?.actual === sha256 &&
          error.message.includes(wrong) &&
          error.message.includes(sha256),
      );
      assert.deepEqual(await filesIn(directory), []);
      assert.equal(store.downloads.findByHash(wrong)?.status, 'failed');
    }));

  test('a hash that is not SHA-256 hex is refused before any request', () =>
    scenario([], async ({ server, options }) => {
      await assert.rejects(download({ ...options, sha256: 'external' }), { code: 'E_UNVERIFIED' });
      assert.equal(server.requests.length, 0);
    }));

  test('not enough free space fails with E_DISK_FULL before any request', () =>
    scenario([], async ({ server, options, directory }) => {
      await assert.rejects(
        download({ ...options, size: 2 ** 52 }),
        (error: CodedError) => error.code === 'E_DISK_FULL' && typeof error.details?.needed === 'number',
      );
      assert.equal(server.requests.length, 0);
      assert.deepEqual(await filesIn(directory), []);
    }));

  test('an abort stops at once with E_ABORTED and leaves a partial file that a later call resumes', () =>
    scenario([], (context) => abortThenResume(context, 256 * 1024)));

  test('the rate limit holds the average speed, and progress events are few and carry bytes, total, speed and ETA', () =>
    scenario([], async ({ options }) => {
      const events: ProgressEvent[] = [];
      const started = Date.now();
      const result = await download({
        ...options,
        rateLimit: 4 * 1024 * 1024,
        onProgress: (event) => events.push(event),
      });
      const seconds = (Date.now() - started) / 1000;
      await assertCompleteFile(result.path);
      assert.ok(seconds >= 0.55, `3 MiB at 4 MiB/s took ${seconds} s`);
      assert.ok(events.length <= Math.ceil(seconds * 4) + 2, `${events.length} events in ${seconds} s`);
      const last = events.at(-1)!;
      assert.deepEqual(
        { step: last.step, done: last.done, total: last.total },
        { step: 'downloading', done: content.length, total: content.length },
      );
      const middle = events.find((event) => event.done > 0 && event.done < content.length);
      assert.ok(
        middle && middle.rate > 0 && middle.eta !== null,
        'a progress event in the middle has a speed and an ETA',
      );
      assert.equal(existsSync(result.path), true);
    }));
});
