import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI_PATH, runCli, withTempDir } from '../helpers/cli.js';
import { snapshot } from '../helpers/tree.js';

/**
 * A cancel before the switch, through the real CLI: a "no" at the confirmation (on a terminal) or a
 * SIGTERM while the package downloads. The box is left as it was and the upgrade is `cancelled`.
 */
let server: Server;
let url = '';
const stalled: ServerResponse[] = [];
let packageRequested: () => void = () => undefined;

before(async () => {
  server = createServer((request, response) => {
    if (request.url === '/manifest.json') {
      const entry = { url: 'full.tar.gz', hash: 'c'.repeat(64), size: 1_000_000 };
      response.end(JSON.stringify({ version: '1.1.0', platforms: { x86_64: entry, aarch64: entry } }));
      return;
    }
    // The package: headers, then nothing, so the upgrade is still downloading when it is stopped.
    response.writeHead(200, { 'content-length': '1000000' });
    response.flushHeaders();
    stalled.push(response);
    packageRequested();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  for (const response of stalled) response.destroy();
  await new Promise((resolve) => server.close(resolve));
});

async function box(directory: string): Promise<string> {
  const home = path.join(directory, 'home');
  await mkdir(path.join(home, 'docker', 'web'), { recursive: true });
  await writeFile(path.join(home, 'docker', 'docker-compose.yml'), 'services: {}\n');
  await writeFile(path.join(home, 'docker', 'web', 'index.html'), 'A\n');
  await writeFile(
    path.join(home, 'config.toml'),
    `[versions]\ndocker_service = "1.0.0"\n\n[server]\nmanifest_url = "${url}/manifest.json"\n\n` +
      '[download]\nretries = 0\n',
  );
  return home;
}

/** What must be as it was: docker/ and config.toml. */
async function state(home: string): Promise<Record<string, string>> {
  const docker = await snapshot(path.join(home, 'docker'));
  const config = await snapshot(home);
  return { ...docker, 'config.toml': config['config.toml'] ?? '' };
}

async function assertCancelled(home: string, code: number, result: Record<string, unknown>): Promise<void> {
  assert.equal(code, 1, JSON.stringify(result));
  assert.equal(result.status, 'failed');
  assert.equal(result.outcome, 'cancelled');
  assert.equal(result.changed, false);
  const history = await runCli(['--home', home, 'history']);
  assert.equal(history.code, 0, history.stderr);
  assert.match(history.stdout, /1\.0\.0 → 1\.1\.0 full cancelled at \w+/);
  const status = await runCli(['--home', home, '--json', 'status']);
  assert.equal(status.json().version, '1.0.0');
}

describe('cancelling an upgrade before the switch (CLI)', () => {
  test('SIGTERM while the package downloads: outcome cancelled in the result and history, nothing changed', () =>
    withTempDir('cancel', async (directory) => {
      const home = await box(directory);
      const before = await state(home);
      const child = spawn(process.execPath, [CLI_PATH, '--home', home, '--json', 'upgrade', '--yes'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const requested = new Promise<void>((resolve) => {
        packageRequested = resolve;
      });
      const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
      await Promise.race([requested, exited]);
      child.kill('SIGTERM');
      const code = await exited;
      const lines = stdout.trim().split('\n').filter(Boolean);
      assert.ok(lines.length > 0, stderr);
      const result = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
      await assertCancelled(home, code, result);
      assert.equal(result.step, 'downloading');
      assert.deepEqual(await state(home), before);
    }));
});
