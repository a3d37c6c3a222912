import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { download } from '../../src/downloader/index.js';
import { MisbehavingServer } from '../helpers/misbehaving-server.js';
import { assertCompleteFile, content, scenario, sha256 } from './fixture.js';

type CodedError = { code: string; message: string; details?: Record<string, unknown> };

/** A port that refuses connections: bound, then closed. */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/file.tar.gz`;
}

describe('downloader: a trickle is a failed attempt, a dead host is passed at once', () => {
  test('one byte every 50 ms (in time for the stall timeout) ends the attempt with E_STALL', () =>
    scenario(['trickle', 'trickle', 'trickle'], async ({ server, options, store, partPath }) => {
      const minRate = { bytesPerSecond: 1024, windowMs: 400 };
      const started = Date.now();
      await assert.rejects(download({ ...options, retries: 2, minRate }), (error: CodedError) => {
        assert.equal(error.code, 'E_STALL');
        assert.match(error.message, /Gave up after 3 attempts/);
        assert.match(error.message, /below the minimum of 1024 bytes\/s \(\[download\] min_rate\)/);
        return true;
      });
      assert.ok(Date.now() - started < 5000, `failed within a few windows (${Date.now() - started} ms)`);
      assert.equal(server.requests.length, 3);
      const kept = (await stat(partPath)).size;
      assert.ok(kept > 0, 'the bytes that trickled in are kept');
      assert.equal(store.downloads.findByHash(sha256)?.offset, kept);
      // Each retry resumed where the previous attempt stopped.
      assert.equal(server.requests[1]!.range?.startsWith('bytes='), true);
      assert.notEqual(server.requests[1]!.range, 'bytes=0-');
    }));

  test('after a trickling attempt the retry resumes from where it stopped and completes', () =>
    scenario(['trickle'], async ({ server, options }) => {
      const result = await download({ ...options, minRate: { bytesPerSecond: 1024, windowMs: 300 } });
      await assertCompleteFile(result.path);
      assert.equal(server.requests.length, 2);
      const resumedAt = Number(/^bytes=(\d+)-$/.exec(server.requests[1]!.range ?? '')?.[1]);
      assert.ok(resumedAt > 0, `the second request resumes at ${resumedAt}`);
      assert.equal(result.fetchedBytes, content.length, 'no byte was fetched twice');
    }));

  test('a connection refused passes to the next mirror at once, without a backoff', async () => {
    const dead = await closedPort();
    await scenario([], async ({ server, options }) => {
      const started = Date.now();
      const result = await download({
        ...options,
        urls: [dead, server.url],
        retries: 5,
        backoff: { baseMs: 2000, maxMs: 30_000 },
      });
      const elapsed = Date.now() - started;
      await assertCompleteFile(result.path);
      assert.equal(result.url, server.url);
      assert.ok(elapsed < 1000, `failover took ${elapsed} ms`);
    });
  });

  test('every host refusing: the list is tried again after a backoff; the error names it', async () => {
    const dead = [await closedPort(), await closedPort()];
    await scenario([], async ({ options }) => {
      await assert.rejects(
        download({ ...options, urls: dead, retries: 2, backoff: { baseMs: 5, maxMs: 10 } }),
        (error: CodedError) => {
          assert.equal(error.code, 'E_NETWORK');
          assert.match(error.message, /Gave up after 6 attempts: .*ECONNREFUSED/);
          return true;
        },
      );
    });
  });

  test('a DNS failure passes to the next mirror at once', () =>
    scenario([], async ({ server, options }) => {
      const started = Date.now();
      const result = await download({
        ...options,
        urls: ['http://nuwax-mirror.invalid/file.tar.gz', server.url],
        backoff: { baseMs: 2000, maxMs: 30_000 },
      });
      await assertCompleteFile(result.path);
      assert.ok(Date.now() - started < 2000, `failover took ${Date.now() - started} ms`);
    }));

  test('a mirror that comes back is used in the next round', async () => {
    const dead = await closedPort();
    const port = Number(new URL(dead).port);
    const revived = new MisbehavingServer(content);
    await scenario([], async ({ options }) => {
      const pending = download({ ...options, urls: [dead], retries: 3, backoff: { baseMs: 300, maxMs: 300 } });
      // Between the first round and the second, the host starts answering on the same port.
      await new Promise((resolve) => setTimeout(resolve, 50));
      await revived.startOn(port);
      try {
        const result = await pending;
        await assertCompleteFile(result.path);
      } finally {
        await revived.stop();
      }
    });
  });
});
