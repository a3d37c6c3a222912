import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { describe, test } from 'node:test';
import tarStream from 'tar-stream';
import yazl from 'yazl';
import { createTarGz, detectArchiveFormat, extractArchive, listArchive } from '../../src/archive/index.js';
import { withTempDir } from '../helpers/cli.js';
import { snapshot } from '../helpers/tree.js';

async function makeTree(root: string): Promise<void> {
  await mkdir(path.join(root, 'app', 'empty'), { recursive: true });
  await mkdir(path.join(root, 'data', 'nested'), { recursive: true });
  await writeFile(path.join(root, 'app', 'app.jar'), randomBytes(300 * 1024));
  await writeFile(path.join(root, 'app', 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(path.join(root, 'app', 'run.sh'), 0o755);
  await writeFile(path.join(root, 'data', 'nested', 'small.txt'), 'x'.repeat(100));
  await chmod(path.join(root, 'data', 'nested', 'small.txt'), 0o600);
  await symlink('../data/nested/small.txt', path.join(root, 'app', 'link'));
  for (let index = 0; index < 50; index += 1) await writeFile(path.join(root, 'data', `f${index}`), randomBytes(index * 100));
}

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device'; linkname?: string; content?: string };

async function hostileTar(file: string, entries: Entry[]): Promise<void> {
  const pack = tarStream.pack();
  const writing = pipeline(pack, createGzip(), createWriteStream(file));
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    if (type === 'file') pack.entry({ name: entry.name, type }, entry.content ?? 'evil');
    else pack.entry({ name: entry.name, type, linkname: entry.linkname ?? '', ...(type === 'character-device' ? { devmajor: 1, devminor: 3 } : {}) });
  }
  pack.finalize();
  await writing;
}

describe('archive: create and extract', () => {
  test('round-trips a tree byte for byte: content, modes, symlinks, empty folders', () =>
    withTempDir('archive', async (work) => {
      const source = path.join(work, 'source');
      await makeTree(source);
      const archive = path.join(work, 'out', 'backup.tar.gz');
      const created = await createTarGz(source, ['app', 'data', 'absent'], archive, { level: 1 });
      assert.deepEqual(created.missing, ['absent']);
      assert.equal(created.files, 53);
      const target = path.join(work, 'target');
      const extracted = await extractArchive(archive, target);
      assert.equal(extracted.files, 53);
      assert.deepEqual(await snapshot(target), await snapshot(source));
      assert.equal(await detectArchiveFormat(archive), 'tar.gz');
      const listing = await listArchive(archive);
      assert.ok(listing.some((entry) => entry.name === 'app/link' && entry.type === 'symlink'));
    }));

  test('GNU tar reads our archives', () =>
    withTempDir('archive', async (work) => {
      const source = path.join(work, 'source');
      await makeTree(source);
      const archive = path.join(work, 'a.tar.gz');
      await createTarGz(source, ['app', 'data'], archive);
      const listing = spawnSync('tar', ['-tzf', archive], { encoding: 'utf8' });
      assert.equal(listing.status, 0, listing.stderr);
      assert.match(listing.stdout, /app\/run\.sh/);
    }));

  test('a zip with a leading docker/ is extracted with the prefix stripped', () =>
    withTempDir('archive', async (work) => {
      const zip = new yazl.ZipFile();
      zip.addBuffer(Buffer.from('services: {}\n'), 'docker/docker-compose.yml');
      zip.addBuffer(Buffer.from('hello'), 'docker/web/index.html');
      zip.end();
      const file = path.join(work, 'p.zip');
      await pipeline(zip.outputStream, createWriteStream(file));
      assert.equal(await detectArchiveFormat(file), 'zip');
      const target = path.join(work, 'staged');
      await extractArchive(file, target, { stripPrefix: 'docker/' });
      assert.deepEqual((await readdir(target)).sort(), ['docker-compose.yml', 'web']);
    }));

  test('not an archive is E_ARCHIVE', () =>
    withTempDir('archive', async (work) => {
      const file = path.join(work, 'x.tar.gz');
      await writeFile(file, 'just text');
      await assert.rejects(extractArchive(file, path.join(work, 't')), { code: 'E_ARCHIVE' });
    }));

  test('a truncated archive is reported by listArchive', () =>
    withTempDir('archive', async (work) => {
      const source = path.join(work, 'source');
      await makeTree(source);
      const archive = path.join(work, 'a.tar.gz');
      const { size } = await createTarGz(source, ['app', 'data'], archive);
      const { truncate } = await import('node:fs/promises');
      await truncate(archive, Math.floor(size / 2));
      await assert.rejects(listArchive(archive));
    }));
});

describe('archive: hostile entries write nothing outside staging', () => {
  const cases: Array<[string, Entry[], RegExp]> = [
    ['../x escapes', [{ name: '../x' }], /\.\.\/x/],
    ['/etc/x is absolute', [{ name: '/etc/x' }], /\/etc\/x/],
    ['a symlink to / then a file through it', [{ name: 'root', type: 'symlink', linkname: '/' }, { name: 'root/tmp/evil' }], /root/],
    ['a relative symlink out then a file through it', [{ name: 'up', type: 'symlink', linkname: '../..' }, { name: 'up/evil' }], /up/],
    ['a hard link out', [{ name: 'passwd', type: 'link', linkname: '../../etc/passwd' }], /passwd/],
    ['a device node', [{ name: 'null', type: 'character-device' }], /null/],
  ];
  for (const [name, entries, names] of cases) {
    test(name, () =>
      withTempDir('hostile', async (work) => {
        const file = path.join(work, 'evil.tar.gz');
        await hostileTar(file, entries);
        const staging = path.join(work, 'outer', 'staging');
        await mkdir(staging, { recursive: true });
        await assert.rejects(extractArchive(file, staging), (error: { code: string; message: string }) => ['E_UNSAFE_PATH', 'E_ARCHIVE'].includes(error.code) && names.test(error.message));
        // Nothing outside staging: the folder around it holds only staging.
        assert.deepEqual(await readdir(path.join(work, 'outer')), ['staging']);
        assert.deepEqual((await readdir(work)).sort(), ['evil.tar.gz', 'outer']);
      }));
  }
});
