import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, readlink, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import yazl from 'yazl';
import {
  checkArchive,
  createTarGz,
  detectArchiveFormat,
  extractArchive,
  listArchive,
} from '../../src/archive/index.js';
import type { ProgressEvent } from '../../src/events/index.js';
import { withTempDir } from '../helpers/cli.js';
import { snapshot } from '../helpers/tree.js';

const LONG_DIR = `deep/${'d'.repeat(120)}/${'e'.repeat(90)}`;
const LONG_FILE = `${'n'.repeat(150)}.txt`;

async function makeTree(root: string): Promise<void> {
  await mkdir(path.join(root, 'app', 'empty'), { recursive: true });
  await mkdir(path.join(root, 'data', 'nested'), { recursive: true });
  // Over 1 MiB: spans several gzip members.
  await writeFile(path.join(root, 'app', 'app.jar'), randomBytes(2_500_000));
  await writeFile(path.join(root, 'app', 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(path.join(root, 'app', 'run.sh'), 0o755);
  await writeFile(path.join(root, 'data', 'nested', 'small.txt'), 'x'.repeat(100));
  await chmod(path.join(root, 'data', 'nested', 'small.txt'), 0o600);
  await writeFile(path.join(root, 'data', 'empty-file'), '');
  await chmod(path.join(root, 'data', 'nested'), 0o750);
  await symlink('../data/nested/small.txt', path.join(root, 'app', 'link'));
  await symlink(`../${'t'.repeat(140)}`, path.join(root, 'app', 'long-link'));
  await mkdir(path.join(root, 'data', LONG_DIR), { recursive: true });
  await writeFile(path.join(root, 'data', LONG_DIR, LONG_FILE), 'long names go in pax headers');
  for (let index = 0; index < 50; index += 1)
    await writeFile(path.join(root, 'data', `f${index}`), randomBytes(index * 100));
}

describe('archive: create and extract', () => {
  test('round-trips a tree byte for byte: content, modes, symlinks, empty folders, long names', () =>
    withTempDir('archive', async (work) => {
      const source = path.join(work, 'source');
      await makeTree(source);
      const archive = path.join(work, 'out', 'backup.tar.gz');
      const created = await createTarGz(source, ['app', 'data', 'absent'], archive, { level: 1 });
      assert.deepEqual(created.missing, ['absent']);
      assert.equal(created.files, 55);
      assert.equal(created.size, (await stat(archive)).size);
      const target = path.join(work, 'target');
      const extracted = await extractArchive(archive, target);
      assert.equal(extracted.files, 55);
      assert.equal(extracted.symlinks, 2);
      assert.equal(extracted.sha256, created.sha256);
      assert.deepEqual(await snapshot(target), await snapshot(source));
      assert.equal(
        (await stat(path.join(target, 'app', 'run.sh'))).mtimeMs,
        Math.floor((await stat(path.join(source, 'app', 'run.sh'))).mtimeMs / 1000) * 1000,
      );
      assert.equal(await detectArchiveFormat(archive), 'tar.gz');
      assert.deepEqual(await readdir(path.join(work, 'out')), ['backup.tar.gz']);
    }));

  test('writes independently compressed gzip members that carry their length', () =>
    withTempDir('archive', async (work) => {
      const source = path.join(work, 'source');
      await makeTree(source);
      const archive = path.join(work, 'a.tar.gz');
      await createTarGz(source, ['app', 'data'], archive);
      const bytes = await readFile(archive);
      // FEXTRA set, subfield "NX" with the member's length; the next member starts right after it.
      assert.equal(bytes[3], 0x04);
      assert.equal(bytes.toString('latin1', 12, 14), 'NX');
      const first = bytes.readUInt32LE(16);
      assert.ok(first < bytes.length);
      assert.deepEqual([...bytes.subarray(first, first + 3)], [0x1f, 0x8b, 0x08]);
    }));

  test('GNU tar lists and extracts our archives to the same tree', () =>
    withTempDir('archive', async (work) => {
      const source = path.join(work, 'source');
      await makeTree(source);
      const archive = path.join(work, 'a.tar.gz');
      await createTarGz(source, ['app', 'data'], archive);
      const listing = spawnSync('tar', ['-tzf', archive], { encoding: 'utf8' });
      assert.equal(listing.status, 0, listing.stderr);
      assert.match(listing.stdout, /app\/run\.sh/);
      assert.ok(listing.stdout.includes(`${LONG_DIR}/${LONG_FILE}`));
      const target = path.join(work, 'gnu');
      await mkdir(target);
      const extracted = spawnSync('tar', ['-xzpf', archive, '-C', target], { encoding: 'utf8' });
      assert.equal(extracted.status, 0, extracted.stderr);
      assert.deepEqual(await snapshot(target), await snapshot(source));
    }));

  test('extracts archives made by GNU tar: tar.gz (one gzip stream) and plain tar', () =>
    withTempDir('archive', async (work) => {
      const source = path.join(work, 'source');
      await makeTree(source);
      for (const [flags, name, format] of [
        ['-czf', 'gnu.tar.gz', 'tar.gz'],
        ['-cf', 'gnu.tar', 'tar'],
      ] as const) {
        const archive = path.join(work, name);
        assert.equal(spawnSync('tar', [flags, archive, '-C', source, 'app', 'data']).status, 0);
        assert.equal(await detectArchiveFormat(archive), format);
        const target = path.join(work, `target-${format}`);
        await extractArchive(archive, target);
        assert.deepEqual(await snapshot(target), await snapshot(source));
        assert.ok((await checkArchive(archive)).entries > 55);
      }
    }));

  test('a prefix and extra entries go into the archive; stripPrefix takes the prefix off again', () =>
    withTempDir('archive', async (work) => {
      const source = path.join(work, 'source');
      await makeTree(source);
      const archive = path.join(work, 'p.tar.gz');
      await createTarGz(source, ['app'], archive, {
        prefix: 'docker',
        extraEntries: [{ name: 'meta.json', content: Buffer.from('{}') }],
      });
      const names = (await listArchive(archive)).map((entry) => entry.name);
      assert.equal(names[0], 'docker/meta.json');
      assert.ok(names.every((name) => name.startsWith('docker/')));
      const target = path.join(work, 'staged');
      await extractArchive(archive, target, { stripPrefix: 'docker/' });
      assert.deepEqual((await readdir(target)).sort(), ['app', 'meta.json']);
      assert.equal(await readlink(path.join(target, 'app', 'link')), '../data/nested/small.txt');
    }));

  test('a zip with a leading docker/ is extracted with the prefix stripped', () =>
    withTempDir('archive', async (work) => {
      const zip = new yazl.ZipFile();
      zip.addBuffer(Buffer.from('services: {}\n'), 'docker/docker-compose.yml');
      zip.addBuffer(Buffer.from('#!/bin/sh\n'), 'docker/bin/start.sh', { mode: 0o100755 });
      zip.addBuffer(Buffer.from('hello'), 'docker/web/index.html');
      zip.end();
      const file = path.join(work, 'p.zip');
      await pipeline(zip.outputStream, createWriteStream(file));
      assert.equal(await detectArchiveFormat(file), 'zip');
      const target = path.join(work, 'staged');
      const result = await extractArchive(file, target, { stripPrefix: 'docker/' });
      assert.equal(result.files, 3);
      assert.deepEqual((await readdir(target)).sort(), ['bin', 'docker-compose.yml', 'web']);
      assert.equal((await stat(path.join(target, 'bin', 'start.sh'))).mode & 0o777, 0o755);
    }));

  test('progress reports bytes and files under the given step', () =>
    withTempDir('archive', async (work) => {
      const source = path.join(work, 'source');
      await makeTree(source);
      const events: ProgressEvent[] = [];
      const archive = path.join(work, 'a.tar.gz');
      await createTarGz(source, ['app', 'data'], archive, {
        step: 'backing_up',
        onProgress: (event) => events.push(event),
      });
      assert.equal(events.at(-1)?.step, 'backing_up');
      assert.equal(events.at(-1)?.files, 55);
      const extracting: ProgressEvent[] = [];
      await extractArchive(archive, path.join(work, 't'), {
        step: 'staging',
        onProgress: (event) => extracting.push(event),
      });
      assert.equal(extracting.at(-1)?.step, 'staging');
      assert.equal(extracting.at(-1)?.files, 55);
    }));

  test('a cancelled create leaves no archive and no temporary file', () =>
    withTempDir('archive', async (work) => {
      const source = path.join(work, 'source');
      await makeTree(source);
      const controller = new AbortController();
      const output = path.join(work, 'out', 'a.tar.gz');
      const creating = createTarGz(source, ['app', 'data'], output, {
        signal: controller.signal,
        onProgress: () => controller.abort(),
      });
      await assert.rejects(creating, { code: 'E_ABORTED' });
      assert.deepEqual(await readdir(path.join(work, 'out')), []);
    }));
});

describe('archive: damaged archives', () => {
  async function archiveOf(work: string): Promise<{ archive: string; size: number; sha256: string }> {
    const source = path.join(work, 'source');
    await makeTree(source);
    const archive = path.join(work, 'a.tar.gz');
    const { size, sha256 } = await createTarGz(source, ['app', 'data'], archive);
    return { archive, size, sha256 };
  }

  test('not an archive is E_ARCHIVE', () =>
    withTempDir('archive', async (work) => {
      const file = path.join(work, 'x.tar.gz');
      await writeFile(file, 'just text, long enough to be looked at');
      await assert.rejects(extractArchive(file, path.join(work, 't')), { code: 'E_ARCHIVE' });
    }));

  test('an archive cut in the middle of a gzip member is E_ARCHIVE for list and extract', () =>
    withTempDir('archive', async (work) => {
      const { archive, size } = await archiveOf(work);
      await truncate(archive, Math.floor(size / 2));
      await assert.rejects(listArchive(archive), { code: 'E_ARCHIVE' });
      await assert.rejects(extractArchive(archive, path.join(work, 't')), { code: 'E_ARCHIVE' });
    }));

  test('an archive cut exactly between two gzip members is E_ARCHIVE (no end-of-archive marker)', () =>
    withTempDir('archive', async (work) => {
      const { archive } = await archiveOf(work);
      const first = (await readFile(archive)).readUInt32LE(16);
      await truncate(archive, first);
      await assert.rejects(listArchive(archive), { code: 'E_ARCHIVE' });
      await assert.rejects(checkArchive(archive), { code: 'E_ARCHIVE' });
    }));

  test('a flipped byte is caught: sha256 mismatch on extract, gzip CRC or hash on check', () =>
    withTempDir('archive', async (work) => {
      const { archive, sha256, size } = await archiveOf(work);
      const handle = await open(archive, 'r+');
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, Math.floor(size / 3));
      await handle.write(Buffer.from([byte[0]! ^ 0x01]), 0, 1, Math.floor(size / 3));
      await handle.close();
      await assert.rejects(extractArchive(archive, path.join(work, 't'), { sha256 }), (error: { code: string }) =>
        ['E_HASH_MISMATCH', 'E_ARCHIVE'].includes(error.code),
      );
      const checked = await checkArchive(archive).catch((error: { code: string }) => error);
      assert.ok('code' in checked ? checked.code === 'E_ARCHIVE' : checked.sha256 !== sha256);
    }));

  test('an entry over maxEntryBytes is E_ARCHIVE, and so is a total over maxTotalBytes', () =>
    withTempDir('archive', async (work) => {
      const { archive } = await archiveOf(work);
      await assert.rejects(
        extractArchive(archive, path.join(work, 't1'), { maxEntryBytes: 1_000_000 }),
        (error: { code: string; message: string }) => error.code === 'E_ARCHIVE' && /app\/app\.jar/.test(error.message),
      );
      await assert.rejects(extractArchive(archive, path.join(work, 't2'), { maxTotalBytes: 100_000 }), {
        code: 'E_ARCHIVE',
      });
    }));
});
