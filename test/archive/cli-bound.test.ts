import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, withTempDir } from '../helpers/cli.js';
import { ReleaseServer } from '../helpers/release-server.js';
import { writeZeroBomb } from './bomb.js';

describe('nuwax upgrade --download-only refuses a package that expands past its bound', () => {
  const server = new ReleaseServer();
  before(async () => {
    await server.start();
    await withTempDir('bomb-src', async (work) => {
      const file = path.join(work, 'bomb.tar.gz');
      await writeZeroBomb(file, { entries: 1, entrySize: 1024 ** 3 });
      const bytes = await readFile(file);
      server.set('/bomb.tar.gz', bytes);
      const hash = createHash('sha256').update(bytes).digest('hex');
      const full = { url: 'bomb.tar.gz', hash: `sha256:${hash}`, size: bytes.length };
      server.set('/manifest.json', JSON.stringify({ version: '2.0.0', packages: { full } }));
    });
  });
  after(() => server.stop());

  test('a 1 MiB tar.gz of 1 GiB of zeros: E_ARCHIVE naming the entry and the bound, nothing staged', () =>
    withTempDir('bomb', async (home) => {
      const config = `[versions]\ndocker_service = "1.0.0"\n[server]\nmanifest_url = "${server.url}/manifest.json"\n`;
      await writeFile(path.join(home, 'config.toml'), config);
      await mkdir(path.join(home, 'docker'));
      await writeFile(path.join(home, 'docker', 'docker-compose.yml'), 'services: {}\n');
      const started = Date.now();
      const run = await runCli(['--home', home, '--json', 'upgrade', '--download-only']);
      const elapsed = Date.now() - started;
      const result = run.json() as { status: string; step: string; changed: boolean; error: Record<string, string> };
      assert.equal(run.code, 1, run.stderr);
      assert.equal(result.status, 'failed');
      assert.equal(result.step, 'staging');
      assert.equal(result.changed, false);
      assert.equal(result.error.code, 'E_ARCHIVE');
      assert.match(result.error.message, /"docker\/zeros-0\.bin"/);
      assert.match(result.error.message, /past its bound of 20\.\d MiB \(20x the 1\.\d MiB archive\)/);
      assert.ok(elapsed < 10_000, `refused quickly (${elapsed} ms)`);
      const staging = path.join(home, 'cache', 'staging');
      assert.deepEqual(await readdir(staging).catch(() => []), [], 'nothing is left in staging');
      const status = await runCli(['--home', home, '--json', 'status']);
      assert.equal((status.json() as { staged?: unknown }).staged ?? null, null, 'no release is staged');
    }));

  test('[archive] max_ratio raises the bound for a publisher who needs it', () =>
    withTempDir('bomb', async (home) => {
      const config =
        `[versions]\ndocker_service = "1.0.0"\n[server]\nmanifest_url = "${server.url}/manifest.json"\n` +
        '[archive]\nmax_ratio = 5\n';
      await writeFile(path.join(home, 'config.toml'), config);
      await mkdir(path.join(home, 'docker'));
      await writeFile(path.join(home, 'docker', 'docker-compose.yml'), 'services: {}\n');
      const run = await runCli(['--home', home, '--json', 'upgrade', '--download-only']);
      const result = run.json() as { error: Record<string, string> };
      assert.match(result.error.message, /\(5x the 1\.\d MiB archive\)/);
    }));
});
