import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseRange, type StaticServer, startServer } from '../../src/release/index.js';
import { temporaryFolder } from '../apply/trees.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** node:http, not fetch: the raw path goes out as written, `..` included. */
function get(base: string, rawPath: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: url.hostname, port: url.port, path: rawPath, method, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

describe('serve', () => {
  const folder = temporaryFolder('serve');
  const root = path.join(folder.dir, 'www');
  const body = '0123456789';
  let server: StaticServer;
  before(async () => {
    mkdirSync(path.join(root, 'sub'), { recursive: true });
    writeFileSync(path.join(root, 'pkg.tar.gz'), body);
    writeFileSync(path.join(root, 'sub', 'manifest.json'), '{}');
    writeFileSync(path.join(folder.dir, 'secret.txt'), 'SECRET');
    symlinkSync(path.join(folder.dir, 'secret.txt'), path.join(root, 'leak'));
    server = await startServer({ root, port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await server.close();
    folder.cleanup();
  });

  test('a GET answers the file with ETag, Last-Modified and Accept-Ranges', async () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const reply = await get(server.url, '/pkg.tar.gz');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, body);
    assert.equal(reply.headers['content-length'], '10');
    assert.equal(reply.headers['accept-ranges'], 'bytes');
    assert.equal(reply.headers['content-type'], 'application/gzip');
    assert.match(String(reply.headers.etag), /^"[0-9a-f-]+"$/);
    assert.ok(reply.headers['last-modified']);
    assert.equal((await get(server.url, '/sub/manifest.json')).body, '{}');
  });

  test('a HEAD answers the headers without the body', async () => {
    const reply = await get(server.url, '/pkg.tar.gz', {}, 'HEAD');
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['content-length'], '10');
    assert.equal(reply.body, '');
  });

  test('a single range answers 206 with Content-Range, for start-end, open-ended and suffix forms', async () => {
    const cases: Array<[string, string, string]> = [
      ['bytes=2-5', '2345', 'bytes 2-5/10'],
      ['bytes=7-', '789', 'bytes 7-9/10'],
      ['bytes=-3', '789', 'bytes 7-9/10'],
      ['bytes=8-100', '89', 'bytes 8-9/10'],
    ];
    for (const [range, expected, contentRange] of cases) {
      const reply = await get(server.url, '/pkg.tar.gz', { range });
      assert.equal(reply.status, 206, range);
      assert.equal(reply.body, expected, range);
      assert.equal(reply.headers['content-range'], contentRange);
      assert.equal(reply.headers['content-length'], String(expected.length));
    }
  });

  test('a range past the end answers 416 with the size', async () => {
    const reply = await get(server.url, '/pkg.tar.gz', { range: 'bytes=10-' });
    assert.equal(reply.status, 416);
    assert.equal(reply.headers['content-range'], 'bytes */10');
  });

  test('several ranges or a malformed one are ignored: the whole file', async () => {
    for (const range of ['bytes=0-1,3-4', 'lines=1-2', 'bytes=5-2']) {
      const reply = await get(server.url, '/pkg.tar.gz', { range });
      assert.equal(reply.status, 200, range);
      assert.equal(reply.body, body);
    }
  });

  test('If-Range with the current ETag or Last-Modified keeps the range; a stale validator gets the whole file', async () => {
    const { headers } = await get(server.url, '/pkg.tar.gz', {}, 'HEAD');
    const etag = String(headers.etag);
    const lastModified = String(headers['last-modified']);
    assert.equal((await get(server.url, '/pkg.tar.gz', { range: 'bytes=4-', 'if-range': etag })).status, 206);
    assert.equal((await get(server.url, '/pkg.tar.gz', { range: 'bytes=4-', 'if-range': lastModified })).status, 206);
    const stale = await get(server.url, '/pkg.tar.gz', { range: 'bytes=4-', 'if-range': '"stale"' });
    assert.equal(stale.status, 200);
    assert.equal(stale.body, body);
    assert.equal(
      (await get(server.url, '/pkg.tar.gz', { range: 'bytes=4-', 'if-range': 'Thu, 01 Jan 1970 00:00:00 GMT' })).status,
      200,
    );
  });

  test('If-None-Match with the ETag, or If-Modified-Since, answers 304 without a body', async () => {
    const { headers } = await get(server.url, '/pkg.tar.gz', {}, 'HEAD');
    const reply = await get(server.url, '/pkg.tar.gz', { 'if-none-match': String(headers.etag) });
    assert.equal(reply.status, 304);
    assert.equal(reply.body, '');
    assert.equal(
      (await get(server.url, '/pkg.tar.gz', { 'if-modified-since': String(headers['last-modified']) })).status,
      304,
    );
    assert.equal((await get(server.url, '/pkg.tar.gz', { 'if-none-match': '"other"' })).status, 200);
  });

  test('nothing outside the folder is served: .., encoded .., backslashes and symlinks out are refused', async () => {
    for (const raw of [
      '/../secret.txt',
      '/sub/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/..%2fsecret.txt',
      '/sub%2f..%2f..%2fsecret.txt',
      '/..%5csecret.txt',
      '/leak',
      '/pkg.tar.gz%00',
    ]) {
      const reply = await get(server.url, raw);
      assert.ok(reply.status === 403 || reply.status === 404, `${raw} answered ${reply.status}`);
      assert.ok(!reply.body.includes('SECRET'), raw);
    }
    assert.equal((await get(server.url, '/..%2fsecret.txt')).status, 403);
    assert.equal((await get(server.url, '/leak')).status, 403);
  });

  test('a directory or a missing file is 404; a POST is 405', async () => {
    assert.equal((await get(server.url, '/sub')).status, 404);
    assert.equal((await get(server.url, '/')).status, 404);
    assert.equal((await get(server.url, '/nope.tar.gz')).status, 404);
    const post = await get(server.url, '/pkg.tar.gz', {}, 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });

  test('parseRange follows RFC 9110 for one range', () => {
    assert.deepEqual(parseRange('bytes=0-0', 10), { start: 0, end: 0 });
    assert.deepEqual(parseRange('bytes=-20', 10), { start: 0, end: 9 });
    assert.equal(parseRange('bytes=-0', 10), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
    assert.equal(parseRange('bytes=-', 10), null);
  });
});
