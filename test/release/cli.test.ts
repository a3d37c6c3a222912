import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { parseManifest } from '../../src/manifest/index.js';
import { temporaryFolder, writeTree } from '../apply/trees.js';
import { runCli } from '../helpers/cli.js';
import { ReleaseServer } from '../helpers/release-server.js';

const HARNESS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cli-harness.js');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [HARNESS, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('release pack, release patch and serve on the command line', () => {
  let folder: ReturnType<typeof temporaryFolder>;
  beforeEach(() => {
    folder = temporaryFolder('release-cli');
    writeTree(path.join(folder.dir, 'v1'), { 'docker-compose.yml': 'v1', 'app/a.txt': 'a', 'old.txt': 'old' });
    writeTree(path.join(folder.dir, 'v2'), { 'docker-compose.yml': 'v2', 'app/a.txt': 'a', 'front/index.html': 'new' });
  });
  afterEach(() => folder.cleanup());

  test('pack and patch print their sidecars with --json and release manifest builds on them', async () => {
    const home = ['--home', folder.dir, '--json'];
    const full = path.join(folder.dir, 'out', 'app-2.0.0.tar.gz');
    const patch = path.join(folder.dir, 'out', 'app-2.0.0-patch.tar.gz');
    const packed = await run([
      ...home,
      'release',
      'pack',
      path.join(folder.dir, 'v2'),
      '--version',
      '2.0.0',
      '--arch',
      'amd64',
      '-o',
      full,
    ]);
    assert.equal(packed.code, 0, packed.stderr);
    assert.deepEqual(JSON.parse(packed.stdout), {
      file: full,
      ...JSON.parse(readFileSync(`${full}.release.json`, 'utf8')),
    });
    const patched = await run([
      ...home,
      'release',
      'patch',
      path.join(folder.dir, 'v1'),
      path.join(folder.dir, 'v2'),
      '--from',
      '1.0.0',
      '--to',
      '2.0.0',
      '-o',
      patch,
    ]);
    assert.equal(patched.code, 0, patched.stderr);
    assert.deepEqual(JSON.parse(patched.stdout).operations, {
      replace: { files: ['docker-compose.yml'], directories: ['front'] },
      delete: { files: ['old.txt'], directories: [] },
    });
    const manifestFile = path.join(folder.dir, 'out', 'manifest.json');
    const built = await run([...home, 'release', 'manifest', full, patch, '--version', '2.0.0', '-o', manifestFile]);
    assert.equal(built.code, 0, built.stderr);
    const manifest = parseManifest(readFileSync(manifestFile), 'manifest.json');
    assert.deepEqual(manifest.patch?.x86_64?.from, ['1.0.0']);
    assert.ok(manifest.platforms?.x86_64);
  });

  test('what keygen, pack, patch, manifest and sign publish is accepted by `nuwax check` on a box (signed, patch; full for another base)', async () => {
    const out = path.join(folder.dir, 'out');
    const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
    const publish = async (args: string[]) => {
      const result = await run(['--home', folder.dir, ...args]);
      assert.equal(result.code, 0, result.stderr);
    };
    await publish(['release', 'keygen', '-o', path.join(folder.dir, 'signing')]);
    await publish([
      'release',
      'pack',
      path.join(folder.dir, 'v2'),
      '--version',
      '2.0.0',
      '--arch',
      arch,
      '-o',
      path.join(out, 'full.tar.gz'),
    ]);
    await publish([
      'release',
      'patch',
      path.join(folder.dir, 'v1'),
      path.join(folder.dir, 'v2'),
      '--from',
      '1.0.0',
      '--to',
      '2.0.0',
      '--arch',
      arch,
      '-o',
      path.join(out, 'patch.tar.gz'),
    ]);
    await publish([
      'release',
      'manifest',
      '--version',
      '2.0.0',
      '--notes',
      'two',
      '-o',
      path.join(out, 'manifest.json'),
      path.join(out, 'full.tar.gz'),
      path.join(out, 'patch.tar.gz'),
    ]);
    await publish(['release', 'sign', path.join(out, 'manifest.json'), '-k', path.join(folder.dir, 'signing.key')]);
    const server = await new ReleaseServer().start();
    try {
      for (const name of ['manifest.json', 'manifest.json.sig', 'full.tar.gz', 'patch.tar.gz'])
        server.set(`/${name}`, readFileSync(path.join(out, name)));
      const box = path.join(folder.dir, 'box');
      mkdirSync(path.join(box, 'docker'), { recursive: true });
      writeFileSync(path.join(box, 'docker', 'docker-compose.yml'), 'services: {}\n');
      const publicKey = readFileSync(path.join(folder.dir, 'signing.pub'), 'utf8').trim();
      const config = (version: string) =>
        `[versions]\ndocker_service = "${version}"\n\n[server]\nmanifest_url = "${server.url}/manifest.json"\n\n[security]\npublic_keys = ["${publicKey}"]\n`;
      writeFileSync(path.join(box, 'config.toml'), config('1.0.0'));
      const patch = await runCli(['--home', box, '--json', 'check']);
      assert.equal(patch.code, 0, patch.stderr);
      assert.deepEqual(
        [patch.json().strategy, patch.json().signed, patch.json().offered, patch.json().notes],
        ['patch', true, '2.0.0', 'two'],
      );
      writeFileSync(path.join(box, 'config.toml'), config('0.9.0'));
      const full = await runCli(['--home', box, '--json', 'check']);
      assert.deepEqual([full.json().strategy, full.json().signed], ['full', true]);
    } finally {
      await server.stop();
    }
  });

  test('a bad arch or a missing folder is a usage error (exit 2), nothing written', async () => {
    const output = path.join(folder.dir, 'x.tar.gz');
    const badArch = await run([
      '--home',
      folder.dir,
      'release',
      'pack',
      path.join(folder.dir, 'v2'),
      '--version',
      '2.0.0',
      '--arch',
      'mips',
      '-o',
      output,
    ]);
    assert.equal(badArch.code, 2);
    assert.match(badArch.stderr, /E_USAGE/);
    const missing = await run([
      '--home',
      folder.dir,
      'release',
      'patch',
      path.join(folder.dir, 'nope'),
      path.join(folder.dir, 'v2'),
      '--from',
      '1.0.0',
      '--to',
      '2.0.0',
      '-o',
      output,
    ]);
    assert.equal(missing.code, 2);
    assert.throws(() => readFileSync(output));
  });

  test('serve prints its URL, serves ranges and stops on SIGTERM with exit 0', async () => {
    writeTree(path.join(folder.dir, 'www'), { 'pkg.bin': '0123456789' });
    const child = spawn(
      process.execPath,
      [HARNESS, '--home', folder.dir, '--json', 'serve', path.join(folder.dir, 'www'), '--port', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const first = await new Promise<string>((resolve) => {
      let buffered = '';
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        if (buffered.includes('\n')) resolve(buffered.split('\n')[0]!);
      });
    });
    const { url } = JSON.parse(first) as { url: string };
    const response = await fetch(new URL('pkg.bin', url), { headers: { range: 'bytes=3-4' } });
    assert.equal(response.status, 206);
    assert.equal(await response.text(), '34');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
