import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { readVersion } from '../../scripts/package.js';
import { withTempDir } from '../helpers/cli.js';
import { ReleaseServer } from '../helpers/release-server.js';
import { AARCH64_SYSROOT, extract, packageFor, packageSuite, pathWithoutNode, QEMU } from './packages.js';

const run = promisify(execFile);

async function launch(
  root: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeout = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(path.join(root, 'bin', 'nuwax'), args, { env, timeout });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === 'number' ? failed.code : 1,
      stdout: failed.stdout ?? '',
      stderr: failed.stderr ?? '',
    };
  }
}

describe('the x86_64 archive runs where no node is installed', packageSuite('x86_64'), () => {
  test('bin/nuwax --version, status and check against a local server, with a PATH that holds no node', async () => {
    const built = await packageFor('x86_64');
    const version = await readVersion();
    assert.equal(path.basename(built.file), `nuwax-${version}-linux-x86_64.tar.gz`);
    await withTempDir('package-x64', async (directory) => {
      const root = path.join(directory, 'opt-nuwax-client');
      await run('mkdir', ['-p', root]);
      extract(built.file, root);
      assert.equal(await readlink(path.join(root, 'current')), path.join('versions', version));
      const versionDir = path.join(root, 'versions', version);
      // Production dependencies only, and one addon for the arch.
      assert.ok(
        existsSync(path.join(versionDir, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')),
      );
      assert.ok(!existsSync(path.join(versionDir, 'node_modules', 'typescript')));
      assert.ok(!existsSync(path.join(versionDir, 'node_modules', '@biomejs')));
      assert.ok(!existsSync(path.join(versionDir, 'node_modules', 'better-sqlite3', 'deps')));

      const env = { PATH: await pathWithoutNode(directory), HOME: directory };
      await assert.rejects(run('sh', ['-c', 'command -v node'], { env }), 'the PATH must hold no node');
      const versionRun = await launch(root, ['--version'], env);
      assert.equal(versionRun.code, 0, versionRun.stderr);
      assert.equal(versionRun.stdout.trim(), version);

      const home = path.join(directory, 'home');
      await run('mkdir', ['-p', path.join(home, 'docker')]);
      await writeFile(path.join(home, 'docker', 'docker-compose.yml'), 'services: {}\n');
      const server = await new ReleaseServer().start();
      try {
        const full = Buffer.from('a package');
        const hash = createHash('sha256').update(full).digest('hex');
        server.set('/full.tar.gz', full);
        server.set(
          '/manifest.json',
          JSON.stringify({
            version: '1.0.1',
            release_date: '2026-11-20T10:00:00Z',
            release_notes: 'from the archive test',
            platforms: { x86_64: { url: 'full.tar.gz', hash: `sha256:${hash}`, size: full.length } },
          }),
        );
        await writeFile(
          path.join(home, 'config.toml'),
          `[versions]\ndocker_service = "1.0.0"\n\n[server]\nmanifest_url = "${server.url}/manifest.json"\n`,
        );
        const status = await launch(root, ['--home', home, '--json', 'status'], env);
        assert.equal(status.code, 0, status.stderr);
        assert.equal((JSON.parse(status.stdout) as { version?: string }).version, '1.0.0');
        assert.ok(existsSync(path.join(home, 'data', 'nuwax.db')), 'status opened SQLite with the bundled addon');

        const check = await launch(root, ['--home', home, '--json', 'check'], env);
        assert.equal(check.code, 0, check.stderr);
        const result = JSON.parse(check.stdout) as { current: string; offered: string; strategy: string };
        assert.deepEqual([result.current, result.offered, result.strategy], ['1.0.0', '1.0.1', 'full']);
        assert.ok(server.requests.some((request) => request.url === '/manifest.json'));
      } finally {
        await server.stop();
      }
    });
  });
});

describe('the aarch64 archive runs under qemu-aarch64-static', packageSuite('aarch64'), () => {
  test('bin/nuwax --version and status (SQLite native addon built for aarch64)', async () => {
    const built = await packageFor('aarch64');
    const version = await readVersion();
    await withTempDir('package-arm64', async (directory) => {
      const root = path.join(directory, 'opt-nuwax-client');
      await run('mkdir', ['-p', root]);
      extract(built.file, root);
      const versionDir = path.join(root, 'versions', version);
      const node = await readFile(path.join(versionDir, 'runtime', 'node'));
      const addon = await readFile(
        path.join(versionDir, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'),
      );
      // ELF e_machine 183 is EM_AARCH64.
      assert.equal(node.readUInt16LE(18), 183);
      assert.equal(addon.readUInt16LE(18), 183);

      const env = {
        PATH: await pathWithoutNode(directory),
        HOME: directory,
        NUWAX_EMULATOR: (await run('sh', ['-c', `command -v ${QEMU}`])).stdout.trim(),
        QEMU_LD_PREFIX: AARCH64_SYSROOT,
      };
      const versionRun = await launch(root, ['--version'], env, 180_000);
      assert.equal(versionRun.code, 0, versionRun.stderr);
      assert.equal(versionRun.stdout.trim(), version);

      const home = path.join(directory, 'home');
      await run('mkdir', ['-p', home]);
      await writeFile(path.join(home, 'config.toml'), '[versions]\ndocker_service = "2.0.0"\n');
      const status = await launch(root, ['--home', home, '--json', 'status'], env, 180_000);
      assert.equal(status.code, 0, status.stderr);
      assert.equal((JSON.parse(status.stdout) as { version?: string }).version, '2.0.0');
      assert.ok(existsSync(path.join(home, 'data', 'nuwax.db')));
    });
  });
});
