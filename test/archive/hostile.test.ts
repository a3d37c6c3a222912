import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import yazl from 'yazl';
import { extractArchive } from '../../src/archive/index.js';
import { withTempDir } from '../helpers/cli.js';
import { HOSTILE_CASES, hostileTar } from './hostile-cases.js';

async function assertNothingOutside(work: string): Promise<void> {
  assert.deepEqual(await readdir(path.join(work, 'outer')), ['staging']);
  assert.deepEqual((await readdir(work)).sort(), ['evil.tar.gz', 'outer', 'outside.txt']);
  assert.equal(await readFile(path.join(work, 'outside.txt'), 'utf8'), 'precious');
}

describe('archive: hostile entries are refused, naming the entry, and nothing lands outside staging', () => {
  for (const [name, entries, mentioned] of HOSTILE_CASES) {
    test(name, () =>
      withTempDir('hostile', async (work) => {
        const file = path.join(work, 'evil.tar.gz');
        await hostileTar(file, entries);
        await writeFile(path.join(work, 'outside.txt'), 'precious');
        // The staging folder sits two levels down, so that `../..` lands in `work`.
        const staging = path.join(work, 'outer', 'staging');
        await mkdir(staging, { recursive: true });
        await assert.rejects(extractArchive(file, staging), (error: { code: string; message: string }) => {
          assert.ok(['E_UNSAFE_PATH', 'E_ARCHIVE'].includes(error.code), error.message);
          assert.ok(error.message.includes(mentioned), `${error.message} should name ${mentioned}`);
          return true;
        });
        await assertNothingOutside(work);
      }),
    );
  }

  test('a zip entry with ../ is E_UNSAFE_PATH and a zip symlink out is refused', () =>
    withTempDir('hostile', async (work) => {
      await writeFile(path.join(work, 'outside.txt'), 'precious');
      const staging = path.join(work, 'outer', 'staging');
      await mkdir(staging, { recursive: true });
      // yazl refuses to write `..` itself: the name is patched in the bytes afterwards.
      const zip = new yazl.ZipFile();
      zip.addBuffer(Buffer.from('evil'), 'AAx');
      zip.end();
      const chunks: Buffer[] = [];
      for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
      const bytes = Buffer.from(Buffer.concat(chunks).toString('latin1').replaceAll('AAx', '../'), 'latin1');
      const file = path.join(work, 'evil.tar.gz');
      await writeFile(file, bytes);
      await assert.rejects(extractArchive(file, staging), { code: 'E_UNSAFE_PATH' });
      await assertNothingOutside(work);
      const linkZip = new yazl.ZipFile();
      linkZip.addBuffer(Buffer.from('../../outside.txt'), 'link', { mode: 0o120777 });
      linkZip.end();
      await pipeline(linkZip.outputStream, createWriteStream(file));
      await assert.rejects(
        extractArchive(file, staging),
        (error: { code: string; message: string }) => error.code === 'E_UNSAFE_PATH' && error.message.includes('link'),
      );
      await assertNothingOutside(work);
    }));

  test('stripPrefix refuses an archive whose entries are only partly under the prefix', () =>
    withTempDir('hostile', async (work) => {
      const file = path.join(work, 'mixed.tar.gz');
      await hostileTar(file, [{ name: 'docker/a' }, { name: 'b' }]);
      await assert.rejects(
        extractArchive(file, path.join(work, 's'), { stripPrefix: 'docker/' }),
        (error: { code: string; message: string }) => error.code === 'E_ARCHIVE' && error.message.includes('"b"'),
      );
    }));

  test('a symlink that stays inside, a hard link to an extracted file, and a repeated file name are fine', () =>
    withTempDir('hostile', async (work) => {
      const file = path.join(work, 'ok.tar.gz');
      await hostileTar(file, [
        { name: 'dir', type: 'directory' },
        { name: 'dir/file', content: 'first' },
        { name: 'dir/file', content: 'second' },
        { name: 'dir/alias', type: 'symlink', linkname: 'file' },
        { name: 'hard', type: 'link', linkname: 'dir/file' },
        { name: 'up', type: 'symlink', linkname: 'dir/../dir/file' },
      ]);
      const target = path.join(work, 't');
      const result = await extractArchive(file, target);
      assert.equal(await readFile(path.join(target, 'dir', 'alias'), 'utf8'), 'second');
      assert.equal(await readFile(path.join(target, 'hard'), 'utf8'), 'second');
      assert.equal(await readFile(path.join(target, 'up'), 'utf8'), 'second');
      assert.equal(result.symlinks, 2);
    }));
});
