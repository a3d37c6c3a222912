import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { download } from '../../src/downloader/index.js';
import { content, scenario, sha256, sha256Of } from './fixture.js';

/** A package the user chose to install without a SHA-256 ([security] allow_unverified): `sha256: null`. */
describe('a download without a SHA-256, by choice', () => {
  test('completes with the hash it received, and resumes after the connection is cut at 50 %', () =>
    scenario(['cut-half'], async ({ server, options, store }) => {
      const result = await download({ ...options, sha256: null, size: null });
      assert.equal(result.sha256, sha256, 'the hash of what arrived');
      assert.equal(result.reused, false);
      assert.deepEqual(await readFile(result.path), content);
      assert.equal(server.requests.length, 2);
      assert.match(String(server.requests[1]!.range), /^bytes=[1-9]\d*-$/, 'the second attempt resumed');
      assert.equal(server.requests[1]!.ifRange, '"v1"', 'checked with If-Range');
      assert.equal(store.downloads.findByHash(sha256), undefined, 'its row is keyed by the URL, not a hash');
    }));

  test('is never taken from an earlier copy: the server may have changed the file', () =>
    scenario([], async ({ server, options }) => {
      const first = await download({ ...options, sha256: null, size: null });
      server.content = randomBytes(4096);
      server.etag = '"v2"';
      const second = await download({ ...options, sha256: null, size: null });
      assert.equal(second.reused, false);
      assert.equal(second.sha256, sha256Of(server.content));
      assert.deepEqual(await readFile(second.path), server.content);
      assert.equal(second.path, first.path, 'one file per URL, replaced');
    }));

  test('a verified download of the same bytes is still checked against its hash', () =>
    scenario([], async ({ options }) => {
      await assert.rejects(download({ ...options, sha256: 'd'.repeat(64) }), { code: 'E_HASH_MISMATCH' });
    }));
});
