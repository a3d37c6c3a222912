import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import * as undici from 'undici';
import { Agent, getGlobalDispatcher, interceptors, request } from '../../src/http/index.js';

test('the parts nuwax requires from undici are the objects undici itself exports', () => {
  assert.equal(Agent, undici.Agent);
  assert.equal(getGlobalDispatcher, undici.getGlobalDispatcher);
  assert.equal(interceptors.redirect, undici.interceptors.redirect);
  assert.equal(getGlobalDispatcher(), undici.getGlobalDispatcher());
});

test('request sends the method, path, query, headers and body, on the global or a given dispatcher', async () => {
  const seen: string[] = [];
  const server = createServer((incoming, response) => {
    let body = '';
    incoming.on('data', (chunk) => {
      body += chunk;
    });
    incoming.on('end', () => {
      seen.push(`${incoming.method} ${incoming.url} ${incoming.headers['x-test']} ${body}`);
      response.writeHead(201, { 'x-answer': 'yes' }).end('done');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const agent = new Agent();
  try {
    const first = await request(`http://127.0.0.1:${port}/a/b?c=1`, { headers: { 'x-test': 'one' } });
    assert.equal(first.statusCode, 201);
    assert.equal(first.headers['x-answer'], 'yes');
    assert.equal(await first.body.text(), 'done');
    const second = await request(new URL(`http://127.0.0.1:${port}/post`), {
      method: 'POST',
      body: 'payload',
      headers: { 'x-test': 'two' },
      dispatcher: agent,
    });
    assert.equal(await second.body.text(), 'done');
    assert.deepEqual(seen, ['GET /a/b?c=1 one ', 'POST /post two payload']);
  } finally {
    await agent.close();
    server.close();
  }
});

test('importing nuwax http loads neither fetch nor WebSocket from undici', () => {
  const module = fileURLToPath(new URL('../../src/http/index.js', import.meta.url));
  const script =
    `await import(${JSON.stringify(module)});` +
    "const loaded = Object.keys((await import('node:module')).createRequire(import.meta.url).cache);" +
    'console.log(JSON.stringify(loaded.filter((file) => /undici.lib.web/.test(file))));';
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), []);
});
