import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { download, type DownloadOptions } from '../../src/downloader/index.js';
import { openStore } from '../../src/state/index.js';
import { withTempDir } from '../helpers/cli.js';
import { type Behaviour, MisbehavingServer } from '../helpers/misbehaving-server.js';

const content = randomBytes(3 * 1024 * 1024 + 123);
const sha256 = createHash('sha256').update(content).digest('hex');

async function scenario(queue: Behaviour[], run: (context: { server: MisbehavingServer; options: DownloadOptions; home: string }) => Promise<void>, extra: Partial<DownloadOptions> = {}) {
  const server = await new MisbehavingServer(content).start();
  server.queue = [...queue];
  try {
    await withTempDir('dl', async (home) => {
      const store = openStore(path.join(home, 'nuwax.db'));
      try {
        const options: DownloadOptions = { urls: [server.url], sha256, size: content.length, directory: path.join(home, 'downloads'), store, retries: 3, stallTimeoutMs: 500, backoff: { baseMs: 10, maxMs: 50 }, ...extra };
        await run({ server, options, home });
      } finally {
        store.close();
      }
    });
  } finally {
    await server.stop();
  }
}

async function assertComplete(file: string): Promise<void> {
  const bytes = await readFile(file);
  assert.equal(bytes.length, content.length);
  assert.ok(bytes.equals(content));
}

describe('downloader (SPEC 7) against a misbehaving server', () => {
  test('downloads, verifies, and finds the completed file again by hash', () =>
    scenario([], async ({ server, options }) => {
      const first = await download(options);
      await assertComplete(first.path);
      assert.equal(first.reused, false);
      const second = await download(options);
      assert.equal(second.reused, true);
      assert.equal(server.requests.length, 1);
      assert.equal(options.store.downloads.findByHash(sha256)?.status, 'complete');
    }));

  test('resumes after the connection drops at 50 %, fetching only the rest', () =>
    scenario(['cut-half'], async ({ server, options }) => {
      const result = await download(options);
      await assertComplete(result.path);
      assert.equal(server.requests.length, 2);
      assert.match(server.requests[1]!.range ?? '', /^bytes=\d+-$/);
      assert.equal(server.requests[1]!.ifRange, '"v1"');
      assert.ok(server.bytesSent <= content.length + 1024 * 1024, `sent ${server.bytesSent}`);
    }));

  test('a server that ignores Range (200 instead of 206) restarts from zero without appending', () =>
    scenario(['cut-half', 'ignore-range'], async ({ options }) => {
      const result = await download(options);
      await assertComplete(result.path);
    }));

  test('a changed ETag restarts the download cleanly', () =>
    scenario(['cut-half'], async ({ server, options }) => {
      const original = server.etag;
      const pending = download({ ...options, onProgress: () => { server.etag = '"v2"'; } });
      const result = await pending;
      await assertComplete(result.path);
      assert.notEqual(server.etag, original);
      assert.equal(server.requests.at(-1)?.ifRange, original, 'the resume asked with the old validator and got the whole file');
    }));

  test('a Content-Range that does not start at the offset restarts from zero', () =>
    scenario(['cut-half', 'wrong-content-range'], async ({ server, options }) => {
      const result = await download(options);
      await assertComplete(result.path);
      // The request answered with the wrong Content-Range resumed; the one after it starts from zero.
      const resumed = server.requests.findIndex((request) => request.range !== undefined);
      assert.ok(resumed > 0, 'a resume was attempted');
      assert.equal(server.requests[resumed + 1]?.range, undefined);
    }));

  test('a body longer than announced is refused with E_SIZE_MISMATCH', () =>
    scenario(['longer-body'], async ({ options }) => {
      await assert.rejects(download(options), { code: 'E_SIZE_MISMATCH' });
    }));

  test('a stall with no bytes times out and is retried', () =>
    scenario(['stall'], async ({ server, options }) => {
      const result = await download(options);
      await assertComplete(result.path);
      assert.equal(server.requests.length, 2);
    }));

  test('redirects are followed', () =>
    scenario(['redirect'], async ({ server, options }) => {
      const result = await download(options);
      await assertComplete(result.path);
      assert.equal(server.requests[1]!.url, '/moved/file.tar.gz');
    }));

  test('404 fails at once with E_HTTP, no retries', () =>
    scenario(['status-404'], async ({ server, options }) => {
      await assert.rejects(download(options), (error: { code: string; details: { statusCode: number } }) => error.code === 'E_HTTP' && error.details.statusCode === 404);
      assert.equal(server.requests.length, 1);
    }));

  test('5xx is retried with backoff, then succeeds', () =>
    scenario(['status-500', 'status-500'], async ({ server, options }) => {
      const result = await download(options);
      await assertComplete(result.path);
      assert.equal(server.requests.length, 3);
    }));

  test('a mirror is tried when the primary keeps failing', () =>
    scenario(['status-500', 'status-500', 'status-500', 'status-500'], async ({ server, options }) => {
      const mirror = await new MisbehavingServer(content).start();
      try {
        const result = await download({ ...options, urls: [server.url, mirror.url] });
        await assertComplete(result.path);
        assert.equal(result.url, mirror.url);
        assert.equal(server.requests.length, 4);
      } finally {
        await mirror.stop();
      }
    }));

  test('a hash mismatch deletes the file and names expected and actual', () =>
    scenario([], async ({ options }) => {
      const wrong = 'f'.repeat(64);
      await assert.rejects(download({ ...options, sha256: wrong }), (error: { code: string; message: string }) => error.code === 'E_HASH_MISMATCH' && error.message.includes(wrong) && error.message.includes(sha256));
      assert.deepEqual(await readdir(options.directory), []);
      assert.equal(options.store.downloads.findByHash(wrong), undefined);
    }));

  test('an abort leaves a resumable partial file', () =>
    scenario([], async ({ server, options }) => {
      server.slow = 1024 * 1024;
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 400);
      await assert.rejects(download({ ...options, signal: controller.signal }), { code: 'E_ABORTED' });
      const partial = (await stat(path.join(options.directory, `${sha256}.part`))).size;
      assert.ok(partial > 0 && partial < content.length);
      server.slow = 0;
      const before = server.bytesSent;
      const result = await download(options);
      await assertComplete(result.path);
      assert.ok(server.bytesSent - before <= content.length - partial + 64 * 1024);
    }));

  test('kill -9 of a process mid-download: a new process fetches only the rest', () =>
    scenario([], async ({ server, options, home }) => {
      server.slow = 1024 * 1024;
      const script = fileURLToPath(new URL('./download-child.js', import.meta.url));
      const child = spawn(process.execPath, [script, server.url, sha256, String(content.length), options.directory, path.join(home, 'nuwax.db')], { stdio: 'ignore' });
      const partPath = path.join(options.directory, `${sha256}.part`);
      for (let wait = 0; wait < 100 && (!existsSync(partPath) || (await stat(partPath)).size < 512 * 1024); wait += 1) await new Promise((resolve) => setTimeout(resolve, 50));
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      const onDisk = (await stat(partPath)).size;
      assert.ok(onDisk > 0 && onDisk < content.length, `partial ${onDisk}`);
      server.slow = 0;
      const before = server.bytesSent;
      const result = await download(options);
      await assertComplete(result.path);
      const fetched = server.bytesSent - before;
      assert.ok(fetched <= content.length - onDisk + 64 * 1024, `fetched ${fetched} after ${onDisk} on disk`);
      assert.equal(result.resumedFrom, onDisk);
    }));
});
