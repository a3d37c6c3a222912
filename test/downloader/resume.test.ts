import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { downloadFile } from '../../src/downloader/download.js';
import { download, findCompletedDownload } from '../../src/downloader/index.js';
import { assertCompleteFile, content, filesIn, scenario, sha256 } from './fixture.js';

const HALF = Math.floor(content.length / 2);

describe('downloader (SPEC 7): download, reuse, resume', () => {
  for (const engine of ['inline', 'follow'] as const) {
    test(`downloads, verifies and renames to a name derived from the hash (${engine} hashing)`, () =>
      scenario([], async ({ options, store, directory }) => {
        const result = await downloadFile(options, engine);
        await assertCompleteFile(result.path);
        assert.equal(result.path.endsWith(`${sha256}.tar.gz`), true);
        assert.deepEqual(
          { reused: result.reused, resumedFrom: result.resumedFrom, fetchedBytes: result.fetchedBytes },
          { reused: false, resumedFrom: 0, fetchedBytes: content.length },
        );
        assert.deepEqual(await filesIn(directory), [`${sha256}.tar.gz`], 'no partial file is left');
        const row = store.downloads.findByHash(sha256)!;
        assert.deepEqual(
          { status: row.status, size: row.size, offset: row.offset, path: row.path, etag: row.etag },
          { status: 'complete', size: content.length, offset: content.length, path: result.path, etag: '"v1"' },
        );
      }));

    test(`resumes after the connection is cut at 50 %, fetching only the rest with If-Range (${engine} hashing)`, () =>
      scenario(['cut-half'], async ({ server, options }) => {
        const result = await downloadFile(options, engine);
        await assertCompleteFile(result.path);
        assert.equal(server.requests.length, 2);
        assert.equal(server.requests[1]!.range, `bytes=${HALF}-`);
        assert.equal(server.requests[1]!.ifRange, '"v1"');
        assert.equal(server.bytesSent, content.length, 'no byte crossed the wire twice');
        assert.equal(result.fetchedBytes, content.length);
      }));
  }

  test('a completed download is found again by hash and never fetched twice', () =>
    scenario([], async ({ server, options, store }) => {
      const first = await download(options);
      const second = await download({ ...options, sha256: `sha256:${sha256.toUpperCase()}` });
      assert.deepEqual(
        { reused: second.reused, path: second.path, fetchedBytes: second.fetchedBytes },
        { reused: true, path: first.path, fetchedBytes: 0 },
      );
      assert.equal(server.requests.length, 1);
      assert.equal(await findCompletedDownload(store, sha256), first.path);
    }));

  test('a completed row whose file has gone is fetched again', () =>
    scenario([], async ({ server, options, store }) => {
      const first = await download(options);
      await writeFile(first.path, 'truncated');
      assert.equal(
        await findCompletedDownload(store, sha256),
        undefined,
        'a file of the wrong size is not a completed download',
      );
      const again = await download(options);
      await assertCompleteFile(again.path);
      assert.equal(again.reused, false);
      assert.equal(server.requests.length, 2);
    }));

  test('a final file left by a crash before its row was written is verified and kept, without a request', () =>
    scenario([], async ({ server, options, store, directory }) => {
      const { mkdir } = await import('node:fs/promises');
      await mkdir(directory, { recursive: true });
      await writeFile(`${directory}/${sha256}.tar.gz`, content);
      const result = await download(options);
      assert.equal(result.reused, true);
      assert.equal(server.requests.length, 0);
      assert.equal(store.downloads.findByHash(sha256)?.status, 'complete');
    }));

  test('a server that ignores Range (200 instead of 206) restarts from zero, truncating, not appending', () =>
    scenario(['cut-half', 'ignore-range'], async ({ server, options, store }) => {
      const result = await download(options);
      await assertCompleteFile(result.path);
      assert.equal(server.requests[1]!.range, `bytes=${HALF}-`, 'the resume asked for the rest');
      assert.equal(server.bytesSent, HALF + content.length, 'the whole file came once more');
      assert.equal(store.downloads.findByHash(sha256)?.size, content.length);
    }));

  test('a changed ETag (If-Range answered with the whole new file) restarts cleanly', () =>
    scenario(['cut-half'], async ({ server, options, store }) => {
      let changed = false;
      const result = await download({
        ...options,
        onProgress: () => {
          if (changed) return;
          changed = true;
          server.etag = '"v2"';
        },
      });
      await assertCompleteFile(result.path);
      assert.equal(server.requests[1]!.ifRange, '"v1"', 'the resume carried the old validator');
      assert.equal(server.bytesSent, HALF + content.length);
      assert.equal(store.downloads.findByHash(sha256)?.etag, '"v2"', 'the row holds the new validator');
    }));

  test('a 206 under a new ETag (a server that ignores If-Range) is refused and the download restarts from zero', () =>
    scenario(['cut-half', 'new-etag-206'], async ({ server, options }) => {
      const result = await download(options);
      await assertCompleteFile(result.path);
      assert.equal(server.requests.length, 3);
      assert.equal(server.requests[2]!.range, undefined, 'the third request starts from zero');
    }));

  test('a Content-Range that does not start at the offset restarts from zero', () =>
    scenario(['cut-half', 'wrong-content-range'], async ({ server, options }) => {
      const result = await download(options);
      await assertCompleteFile(result.path);
      assert.equal(server.requests.length, 3);
      assert.equal(server.requests[2]!.range, undefined);
    }));

  test('416 with the whole file already on disk verifies it without fetching a byte', () =>
    scenario([], async ({ server, options, store, directory, partPath }) => {
      const { mkdir } = await import('node:fs/promises');
      await mkdir(directory, { recursive: true });
      await writeFile(partPath, content);
      store.downloads.save({
        url: server.url,
        path: `${directory}/x`,
        size: null,
        hash: sha256,
        offset: content.length,
        etag: '"v1"',
        lastModified: null,
        hashState: null,
        status: 'partial',
        error: null,
      });
      const result = await download({ ...options, size: null });
      await assertCompleteFile(result.path);
      assert.equal(server.requests.length, 1);
      assert.equal(server.requests[0]!.range, `bytes=${content.length}-`);
      assert.equal(server.bytesSent, 0);
      assert.equal(result.resumedFrom, content.length);
    }));

  test('416 with an incomplete file on disk restarts from zero', () =>
    scenario(['cut-half', 'range-not-satisfiable'], async ({ server, options }) => {
      const result = await download(options);
      await assertCompleteFile(result.path);
      assert.equal(server.requests.length, 3);
      assert.equal(server.requests[2]!.range, undefined);
    }));

  test('a body that ends cleanly but short is resumed from where it ended', () =>
    scenario(['chunked-short'], async ({ server, options }) => {
      const result = await download(options);
      await assertCompleteFile(result.path);
      assert.equal(server.requests.length, 2);
      assert.equal(server.requests[1]!.range, `bytes=${HALF}-`);
    }));

  test('bytes sent past the announced Content-Length never reach the file', () =>
    scenario(['extra-bytes'], async ({ options }) => {
      const result = await download(options);
      await assertCompleteFile(result.path);
    }));

  test('a partial file without a row (nothing says how it was fetched) is not trusted', () =>
    scenario([], async ({ server, options, directory, partPath }) => {
      const { mkdir } = await import('node:fs/promises');
      await mkdir(directory, { recursive: true });
      await writeFile(partPath, Buffer.alloc(HALF, 7));
      const result = await download(options);
      await assertCompleteFile(result.path);
      assert.equal(server.requests[0]!.range, undefined);
      assert.equal(existsSync(partPath), false);
    }));

  test('a resumed file whose prefix was spoilt is fetched once more from zero, then verified', () =>
    scenario(['cut-half'], async ({ server, options, partPath }) => {
      await assert.rejects(download({ ...options, retries: 0 }), { code: 'E_NETWORK' });
      const spoilt = Buffer.from(content.subarray(0, HALF));
      spoilt[10] = spoilt[10]! ^ 0xff;
      await writeFile(partPath, spoilt);
      assert.equal((await stat(partPath)).size, HALF);
      const result = await download(options);
      await assertCompleteFile(result.path);
      assert.equal(server.requests.length, 3, 'cut, resume (hash mismatch), whole again');
      assert.equal(server.requests[2]!.range, undefined);
    }));
});
