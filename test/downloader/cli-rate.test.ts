import assert from 'node:assert/strict';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, withTempDir } from '../helpers/cli.js';
import { MisbehavingServer } from '../helpers/misbehaving-server.js';
import { ReleaseServer } from '../helpers/release-server.js';
import { content, sha256 } from './fixture.js';

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

type Result = { status: string; step?: string; error?: { code: string; message: string } };

describe('nuwax upgrade --download-only against a package server that trickles or is down', () => {
  const manifests = new ReleaseServer();
  let packages: MisbehavingServer;
  before(async () => {
    await manifests.start();
    packages = await new MisbehavingServer(content, 'full.tar.gz').start();
  });
  after(async () => {
    await packages.stop();
    await manifests.stop();
  });

  async function home(dir: string, urls: string[], extra = ''): Promise<void> {
    const [url, ...mirrors] = urls;
    const full = { url, mirrors, hash: `sha256:${sha256}`, size: content.length };
    manifests.set('/manifest.json', JSON.stringify({ version: '2.0.0', packages: { full } }));
    const config =
      `[versions]\ndocker_service = "1.0.0"\n[server]\nmanifest_url = "${manifests.url}/manifest.json"\n` + extra;
    await writeFile(path.join(dir, 'config.toml'), config);
    await mkdir(path.join(dir, 'docker'));
    await writeFile(path.join(dir, 'docker', 'docker-compose.yml'), 'services: {}\n');
  }

  test('a trickle below [download] min_rate fails the download with E_STALL after its retries, the bytes kept', () =>
    withTempDir('cli-rate', async (dir) => {
      packages.fallback = 'trickle';
      packages.requests = [];
      await home(dir, [packages.url], '[download]\nretries = 1\nmin_rate = 1024\nmin_rate_window = 1\n');
      const run = await runCli(['--home', dir, '--json', 'upgrade', '--download-only']);
      const result = run.json() as Result;
      assert.equal(run.code, 1, run.stdout);
      assert.equal(result.step, 'downloading');
      assert.equal(result.error?.code, 'E_STALL');
      assert.match(result.error?.message ?? '', /Gave up after 2 attempts: .*below the minimum of 1024 bytes\/s/);
      assert.equal(packages.requests.length, 2);
      assert.match(packages.requests[1]!.range ?? '', /^bytes=[1-9]\d*-$/, 'the retry resumed where it stopped');
      const part = path.join(dir, 'cache', 'downloads', `${sha256}.part`);
      assert.ok((await stat(part)).size > 0, 'what trickled in is kept for a resume');
      packages.fallback = 'normal';
    }));

  test('a package whose primary refuses connections comes from its mirror at once', async () => {
    const dead = await closedPort();
    await withTempDir('cli-rate', async (dir) => {
      packages.fallback = 'normal';
      await home(dir, [`http://127.0.0.1:${dead}/full.tar.gz`, packages.url], '[download]\nretries = 5\n');
      const started = Date.now();
      const run = await runCli(['--home', dir, '--json', 'upgrade', '--download-only']);
      const elapsed = Date.now() - started;
      // Staging then refuses the random bytes as an archive: the download itself is what is checked.
      const downloads = await readdir(path.join(dir, 'cache', 'downloads'));
      assert.ok(
        downloads.some((name) => name.startsWith(sha256) && !name.endsWith('.part')),
        run.stdout,
      );
      assert.ok(elapsed < 5000, `the mirror was used without a backoff (${elapsed} ms in all)`);
    });
  });
});
