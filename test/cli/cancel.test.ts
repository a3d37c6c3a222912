import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stripVTControlCharacters } from 'node:util';
import { dockerReachable } from '../../scripts/lib/sample-app.js';
import { CLI_PATH, runCli, withTempDir } from '../helpers/cli.js';
import { snapshot } from '../helpers/tree.js';

/**
 * A cancel before the switch, through the real CLI: a "no" at the confirmation (on a terminal) or a
 * SIGTERM while the package downloads. The box is left as it was and the upgrade is `cancelled`.
 */
// The confirmation comes after the images are checked, which needs the engine; script(1) gives a terminal.
const docker = dockerReachable();
if (!docker && process.env.NUWAX_REQUIRE_DOCKER === '1')
  throw new Error('NUWAX_REQUIRE_DOCKER=1 but Docker is not reachable');
const hasScript = spawnSync('script', ['--version']).status === 0;
let server: Server;
let url = '';
const stalled: ServerResponse[] = [];
/** A real release, published by the test that needs it (path → bytes); the rest stalls. */
const published = new Map<string, Buffer>();
let packageRequested: () => void = () => undefined;

before(async () => {
  server = createServer((request, response) => {
    const file = published.get(request.url ?? '');
    if (file) {
      response.end(file);
      return;
    }
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

async function box(directory: string, manifest = 'manifest.json'): Promise<string> {
  const home = path.join(directory, 'home');
  await mkdir(path.join(home, 'docker', 'web'), { recursive: true });
  await writeFile(path.join(home, 'docker', 'docker-compose.yml'), 'version: "2.4"\nservices: {}\n');
  await writeFile(path.join(home, 'docker', 'web', 'index.html'), 'A\n');
  await writeFile(
    path.join(home, 'config.toml'),
    `[versions]\ndocker_service = "1.0.0"\n\n[server]\nmanifest_url = "${url}/${manifest}"\n\n` +
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

  const why = !docker ? 'Docker is not reachable' : !hasScript ? 'script(1) is not installed' : false;
  test(
    '"no" at the confirmation on a terminal: outcome cancelled in the result and history, nothing changed',
    { skip: why },
    () =>
      withTempDir('cancel', async (directory) => {
        const work = path.join(directory, 'work');
        await mkdir(path.join(work, 'v1.1.0', 'web'), { recursive: true });
        await writeFile(path.join(work, 'v1.1.0', 'docker-compose.yml'), 'version: "2.4"\nservices: {}\n');
        await writeFile(path.join(work, 'v1.1.0', 'web', 'index.html'), 'B\n');
        const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
        const pack = path.join(work, 'full.tar.gz');
        const release = path.join(work, 'release.json');
        const packed = await runCli(
          ['release', 'pack', path.join(work, 'v1.1.0'), '--version', '1.1.0'].concat(['--arch', arch, '-o', pack]),
        );
        assert.equal(packed.code, 0, packed.stderr);
        const made = await runCli(['release', 'manifest', '--version', '1.1.0', '-o', release, pack]);
        assert.equal(made.code, 0, made.stderr);
        published.set('/confirm/release.json', await readFile(release));
        published.set('/confirm/full.tar.gz', await readFile(pack));
        const home = await box(directory, 'confirm/release.json');
        const before = await state(home);
        // script(1) gives nuwax a terminal, so it asks; the answer goes in through that terminal.
        const command = `stty cols 120 rows 40; exec "${process.execPath}" "${CLI_PATH}" --home "${home}" upgrade`;
        const child = spawn('script', ['-qfec', command, '/dev/null'], {
          stdio: ['pipe', 'pipe', 'pipe'],
          env: { ...process.env, NUWAX_DEFAULT_BASE_URL: 'http://127.0.0.1:9', TERM: 'xterm', COLUMNS: '120' },
        });
        let screen = '';
        let answered = false;
        child.stdout.on('data', (chunk: Buffer) => {
          screen += chunk.toString();
          if (!answered && screen.includes('[y/N]')) {
            answered = true;
            child.stdin.write('n');
          }
        });
        const code = await new Promise<number>((resolve) => child.on('exit', (exit) => resolve(exit ?? -1)));
        child.stdin.end();
        assert.ok(answered, stripVTControlCharacters(screen));
        const history = await runCli(['--home', home, '--json', 'history']);
        const lines = history.stdout.trim();
        const rows = JSON.parse(lines) as Array<{ outcome: string; result: Record<string, unknown> }>;
        assert.equal(rows.length, 1, lines);
        assert.equal(rows[0]!.outcome, 'cancelled');
        assert.equal((rows[0]!.result.error as { code: string }).code, 'E_CANCELLED');
        await assertCancelled(home, code, rows[0]!.result);
        assert.deepEqual(await state(home), before);
      }),
  );
});
