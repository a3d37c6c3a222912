import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { downloadFile } from '../../src/downloader/download.js';
import { download } from '../../src/downloader/index.js';
import { defaultEngine } from '../../src/downloader/engine.js';
import { fsyncFile } from '../../src/fsutil/index.js';
import type { Logger } from '../../src/log/index.js';
import type { Behaviour, MisbehavingServer } from '../helpers/misbehaving-server.js';
import {
  abortThenResume,
  assertCompleteFile,
  content,
  filesIn,
  leavePartial,
  scenario,
  sha256,
  sha256Of,
  waitFor,
} from './fixture.js';

const HALF = Math.floor(content.length / 2);
/** Longer than the follower's wake-up batch (8 MiB) and its reads, so that it sleeps and wakes while the file grows. */
const long = randomBytes(40 * 1024 * 1024 + 7);

/** A 128 MiB prefix (zeros: hashing them costs the same) and a rest of 256 KiB that comes long before the prefix is hashed. */
function longPrefixBody(): { body: Buffer; prefix: number } {
  const prefix = 128 * 1024 * 1024;
  const body = Buffer.alloc(prefix + 256 * 1024);
  randomBytes(body.length - prefix).copy(body, prefix);
  return { body, prefix };
}

interface CodedError {
  code: string;
  details?: Record<string, unknown>;
}

/** Warnings the download logs, as objects (pino writes one JSON line each). */
function warningsLogger(): { logger: Logger; warnings: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  const logger = pino<never>(
    { level: 'warn' },
    { write: (line: string) => warnings.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { warnings, logger };
}

describe('downloader (SPEC 7): a resume hashed by a thread that follows the file', () => {
  test('a resume hashes by following the file, whatever the number of cores', () => {
    assert.equal(defaultEngine(HALF), 'follow');
  });

  test('resumes what an earlier process left, fetching only the rest; the digest is of the whole file', () =>
    scenario([], async (context) => {
      await leavePartial(context, content.subarray(0, HALF));
      const result = await download(context.options);
      await assertCompleteFile(result.path);
      assert.deepEqual(
        { resumedFrom: result.resumedFrom, fetchedBytes: result.fetchedBytes },
        { resumedFrom: HALF, fetchedBytes: content.length - HALF },
      );
      assert.deepEqual(
        context.server.requests.map((request) => request.range),
        [`bytes=${HALF}-`],
      );
      assert.equal(context.server.bytesSent, content.length - HALF);
    }));

  for (const engine of ['follow', 'inline'] as const) {
    test(`follows a file longer than its wake-up batch while it grows, fresh and resumed (${engine} hashing)`, () =>
      scenario(
        ['cut-half'],
        async ({ options }) => {
          const result = await downloadFile(options, engine);
          await assertCompleteFile(result.path, long);
          assert.equal(result.resumedFrom, 0);
        },
        {},
        long,
      ));
  }

  test('a resume of a long file whose rest comes faster than the prefix is hashed still gets the digest of the whole file', () =>
    scenario(
      [],
      async (context) => {
        const half = Math.floor(long.length / 2);
        await leavePartial(context, long.subarray(0, half));
        const result = await download(context.options);
        await assertCompleteFile(result.path, long);
        assert.deepEqual(
          { resumedFrom: result.resumedFrom, fetchedBytes: result.fetchedBytes },
          { resumedFrom: half, fetchedBytes: long.length - half },
        );
      },
      {},
      long,
    ));

  const restarts: Array<{ name: string; queue: Behaviour[]; change: (server: MisbehavingServer) => void }> = [
    { name: 'a 200 to the Range request', queue: ['ignore-range'], change: () => {} },
    { name: 'a changed ETag', queue: [], change: (server) => (server.etag = '"v2"') },
  ];
  for (const { name, queue, change } of restarts) {
    test(`${name} while the follower hashes the prefix restarts it from zero: the digest is of the new bytes alone`, () =>
      scenario(
        queue,
        async (context) => {
          // The partial file holds other bytes (an older file under that URL): hashing any of them would fail the digest.
          const half = Math.floor(long.length / 2);
          await leavePartial(context, randomBytes(half));
          change(context.server);
          const result = await download(context.options);
          await assertCompleteFile(result.path, long);
          assert.deepEqual(
            { resumedFrom: result.resumedFrom, fetchedBytes: result.fetchedBytes },
            { resumedFrom: half, fetchedBytes: long.length },
          );
          assert.deepEqual(
            context.server.requests.map((request) => request.range),
            [`bytes=${half}-`],
            'one request: the digest matched the first time',
          );
          assert.equal(
            context.server.bytesSent,
            long.length,
            'the whole file came once, from zero, over the truncated partial file',
          );
        },
        {},
        long,
      ));
  }

  test('a spoilt byte in the prefix on disk is caught by the follower; the file is fetched whole once more, then verified', () =>
    scenario([], async (context) => {
      const spoilt = Buffer.from(content.subarray(0, HALF));
      spoilt[10] = spoilt[10]! ^ 0xff;
      await leavePartial(context, spoilt);
      const { logger, warnings } = warningsLogger();
      const result = await download({ ...context.options, logger });
      await assertCompleteFile(result.path);
      assert.deepEqual(
        warnings.map((warning) => warning.actual),
        [sha256Of(spoilt, content.subarray(HALF))],
        'the mismatch was found, and the digest was of exactly the bytes in the file',
      );
      assert.deepEqual(
        context.server.requests.map((request) => request.range),
        [`bytes=${HALF}-`, undefined],
      );
    }));

  test('a resumed file that fails its hash, and again when fetched whole, is E_HASH_MISMATCH naming expected and actual; no file is left', () =>
    scenario([], async (context) => {
      // The source itself holds the spoilt byte (a corrupt copy on the server), and so does the prefix fetched from it earlier.
      const spoilt = Buffer.from(content);
      spoilt[10] = spoilt[10]! ^ 0xff;
      context.server.content = spoilt;
      await leavePartial(context, spoilt.subarray(0, HALF));
      await assert.rejects(
        download(context.options),
        (error: CodedError) =>
          error.code === 'E_HASH_MISMATCH' &&
          error.details?.expected === sha256 &&
          error.details?.actual === sha256Of(spoilt),
      );
      assert.deepEqual(await filesIn(context.directory), [], 'the spoilt bytes were deleted');
      assert.equal(context.store.downloads.findByHash(sha256)?.status, 'failed');
      assert.equal(context.server.requests.length, 2, 'the rest, then the whole file once');
    }));

  const { body: prefixed, prefix } = longPrefixBody();
  test('an abort while the final digest waits for the follower, still hashing a long prefix, is E_ABORTED at once; the file and its row stay and a later call only verifies them', () =>
    scenario(
      [],
      async (context) => {
        const { server, options, store, partPath } = context;
        await leavePartial(context, prefixed.subarray(0, prefix));
        // An earlier process's prefix has long been on disk: the verify's fsync has only the rest to write.
        await fsyncFile(partPath);
        const controller = new AbortController();
        const running = download({ ...options, signal: controller.signal });
        // The whole size on disk: the rest came and was flushed, and the digest waits for the follower.
        await waitFor(async () => (await stat(partPath).catch(() => undefined))?.size === prefixed.length);
        const abortedAt = Date.now();
        controller.abort();
        await assert.rejects(running, { code: 'E_ABORTED' });
        const abortedIn = Date.now() - abortedAt;
        assert.equal((await stat(partPath)).size, prefixed.length, 'the partial file is kept whole');
        const row = store.downloads.findByHash(options.sha256);
        assert.deepEqual({ status: row?.status, offset: row?.offset }, { status: 'partial', offset: prefixed.length });
        const started = Date.now();
        const result = await download(options);
        const verifiedIn = Date.now() - started;
        await assertCompleteFile(result.path, prefixed);
        assert.deepEqual(
          { resumedFrom: result.resumedFrom, fetchedBytes: result.fetchedBytes },
          { resumedFrom: prefixed.length, fetchedBytes: 0 },
        );
        assert.deepEqual(
          server.requests.map((request) => request.range),
          [`bytes=${prefix}-`],
          'the rest was fetched once; the later call hashed the file without a request',
        );
        assert.equal(server.bytesSent, prefixed.length - prefix);
        assert.ok(
          abortedIn < verifiedIn,
          `the abort took ${abortedIn} ms, less than hashing the file (${verifiedIn} ms)`,
        );
      },
      {},
      prefixed,
    ));

  test('an abort while the follower runs leaves a resumable partial file; a later call fetches only the rest', () =>
    scenario([], async (context) => {
      await leavePartial(context, content.subarray(0, HALF));
      await abortThenResume(context, HALF + 128 * 1024, HALF);
    }));
});
