import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createTarGz } from '../../src/archive/index.js';
import { GzipMemberWriter } from '../../src/archive/gzip-members.js';
import { treeSize } from '../../src/fsutil/index.js';
import { withTempDir } from '../helpers/cli.js';
import { snapshot } from '../helpers/tree.js';

/** 20,000 tiny files: 5,000 in one folder (past the sorted-folder limit), the rest in folders of 100. */
async function makeManyFiles(root: string): Promise<number> {
  const wide = path.join(root, 'data', 'wide');
  await mkdir(wide, { recursive: true });
  let count = 0;
  const writes: Array<Promise<void>> = [];
  const write = async (file: string, content: string) => {
    writes.push(writeFile(file, content));
    count += 1;
    if (writes.length >= 64) await Promise.all(writes.splice(0));
  };
  for (let index = 0; index < 5000; index += 1) await write(path.join(wide, `w${index}`), `wide ${index}\n`);
  for (let folder = 0; folder < 150; folder += 1) {
    const directory = path.join(root, 'data', `f${folder}`);
    await mkdir(directory);
    for (let index = 0; index < 100; index += 1)
      await write(path.join(directory, `n${index}.txt`), `${folder}/${index}\n`.repeat(index % 5));
  }
  await Promise.all(writes);
  return count;
}

describe('archive: create with bounded memory', () => {
  test('a backup of 20,000 tiny files is listed, tested and extracted by GNU tar to the same tree', () =>
    withTempDir('archive-many', async (work) => {
      const source = path.join(work, 'source');
      const count = await makeManyFiles(source);
      const archive = path.join(work, 'many.tar.gz');
      const created = await createTarGz(source, ['data'], archive);
      assert.equal(created.files, count);
      // The files, the 151 folders and data/ itself.
      assert.equal(created.entries, count + 152);
      assert.equal(spawnSync('gzip', ['-t', archive]).status, 0);
      const listing = spawnSync('tar', ['-tzf', archive], { encoding: 'utf8', maxBuffer: 1 << 26 });
      assert.equal(listing.status, 0, listing.stderr);
      const names = listing.stdout.split('\n').filter(Boolean);
      assert.equal(names.length, created.entries);
      // Folders of up to 4,096 names are archived in name order.
      const small = names.filter((name) => name.startsWith('data/f7/') && name !== 'data/f7/');
      assert.equal(small.length, 100);
      assert.deepEqual(small, [...small].sort());
      const target = path.join(work, 'gnu');
      await mkdir(target);
      const extracted = spawnSync('tar', ['-xzpf', archive, '-C', target], { encoding: 'utf8' });
      assert.equal(extracted.status, 0, extracted.stderr);
      assert.deepEqual(await snapshot(target), await snapshot(source));
    }));

  test('the gzip writer never holds more members than its bound, and they inflate to the bytes written', () =>
    withTempDir('archive-bound', async (work) => {
      const file = path.join(work, 'out.gz');
      const handle = await open(file, 'w');
      const writer = new GzipMemberWriter(handle, 6);
      const input = randomBytes(12 << 20);
      // Uneven pieces, so that members are cut inside writes.
      for (let offset = 0; offset < input.length; offset += 300_001)
        await writer.write(input.subarray(offset, offset + 300_001));
      const { size } = await writer.end();
      await handle.close();
      assert.ok(writer.peakPending >= 2, `${writer.peakPending} members were ever pending`);
      assert.ok(writer.peakPending <= writer.bound, `${writer.peakPending} pending, bound ${writer.bound}`);
      const written = await readFile(file);
      assert.equal(written.length, size);
      assert.ok(gunzipSync(written).equals(input));
    }));

  test('treeSize sums every file of a wide and deep tree, a link by its own size, an absent path as 0', () =>
    withTempDir('tree-size', async (work) => {
      let expected = 0;
      for (let depth = 0, folder = work; depth < 5; depth += 1) {
        folder = path.join(folder, `level${depth}`);
        await mkdir(folder);
        for (let index = 0; index < 150; index += 1) {
          await writeFile(path.join(folder, `f${index}`), Buffer.alloc(index + depth));
          expected += index + depth;
        }
      }
      await symlink('level0/f1', path.join(work, 'link'));
      expected += 'level0/f1'.length;
      assert.equal(await treeSize(work), expected);
      assert.equal(await treeSize(path.join(work, 'level0', 'f9')), 9);
      assert.equal(await treeSize(path.join(work, 'absent')), 0);
    }));
});
