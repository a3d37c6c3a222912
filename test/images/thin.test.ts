import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { isNuwaxError } from '../../src/errors/index.js';
import { isThinArchive, makeThinArchive, readImageArchive, rebuildThinImages } from '../../src/images/index.js';
import { layer, legacyArchive, ociArchive, sha256 } from './fixtures.js';

type Maker = (file: string, tag: string, layers: Buffer[]) => Promise<void>;

const FORMATS: Array<{ name: string; make: Maker }> = [
  { name: 'legacy (manifest.json, <id>/layer.tar)', make: legacyArchive },
  { name: 'OCI layout (index.json, blobs/sha256)', make: (file, tag, layers) => ociArchive(file, tag, layers) },
  {
    name: 'OCI layout with gzip layers (blob digest is not the diff_id)',
    make: (file, tag, layers) => ociArchive(file, tag, layers, [0, 1, 2, 3]),
  },
];

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'nuwax-images-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** old = base layers + app 1, new = the same base layers + app 2; box/images/app.tar is the old archive. */
async function twoReleases(make: Maker, appSize = 48 * 1024) {
  const base = [await layer('os', 256 * 1024), await layer('deps', 256 * 1024), await layer('runtime', 128 * 1024)];
  const oldFile = path.join(dir, 'old.tar');
  const newFile = path.join(dir, 'new.tar');
  await make(oldFile, 'app:1', [...base, await layer('app-1', appSize)]);
  await make(newFile, 'app:2', [...base, await layer('app-2', appSize)]);
  const box = path.join(dir, 'box');
  mkdirSync(path.join(box, 'images'), { recursive: true });
  copyFileSync(oldFile, path.join(box, 'images', 'app.tar'));
  const staged = path.join(dir, 'staged', 'images');
  mkdirSync(staged, { recursive: true });
  const thin = path.join(staged, 'app.tar');
  return { oldFile, newFile, box, staged, thin };
}

function fileSha(file: string): string {
  return sha256(readFileSync(file));
}

for (const format of FORMATS) {
  describe(`thin image archives, ${format.name}`, () => {
    test('the thin archive leaves out the layers the old release has; the box rebuilds the archive byte for byte', async () => {
      const { oldFile, newFile, box, staged, thin } = await twoReleases(format.make);
      const made = await makeThinArchive(newFile, [{ file: oldFile, relative: 'images/app.tar' }], thin);
      assert.equal(made.thin, true);
      assert.equal(made.baseLayers, 3);
      assert.equal(made.shippedLayers, 1);
      assert.ok(made.thinSize < made.fullSize / 4, `thin ${made.thinSize} of ${made.fullSize}`);
      assert.equal(await isThinArchive(thin), true);
      const result = await rebuildThinImages(staged, box);
      assert.deepEqual(result.rebuilt, ['app.tar']);
      assert.equal(fileSha(thin), fileSha(newFile));
      assert.deepEqual(readdirSync(staged), ['app.tar']);
      const rebuilt = await readImageArchive(thin);
      assert.equal(rebuilt.images[0]!.layers.length, 4);
    });

    test('an image whose layers all changed is shipped whole: nothing is written', async () => {
      const oldFile = path.join(dir, 'old.tar');
      const newFile = path.join(dir, 'new.tar');
      await format.make(oldFile, 'app:1', [await layer('a'), await layer('b')]);
      await format.make(newFile, 'app:2', [await layer('c'), await layer('d')]);
      const output = path.join(dir, 'thin.tar');
      const made = await makeThinArchive(newFile, [{ file: oldFile, relative: 'images/app.tar' }], output);
      assert.equal(made.thin, false);
      assert.equal(existsSync(output), false);
    });

    test('a base layer tampered with on the box is a base mismatch; the thin archive stays, nothing else is left', async () => {
      const { oldFile, newFile, box, staged, thin } = await twoReleases(format.make);
      await makeThinArchive(newFile, [{ file: oldFile, relative: 'images/app.tar' }], thin);
      const thinSha = fileSha(thin);
      // Flip bytes inside the first layer's body, keeping the tar structure.
      const boxArchive = path.join(box, 'images', 'app.tar');
      const archive = await readImageArchive(boxArchive);
      const bytes = readFileSync(boxArchive);
      const target = archive.images[0]!.layers[0]!.entry;
      bytes[target.dataStart + 1024] = bytes[target.dataStart + 1024]! ^ 0xff;
      writeFileSync(boxArchive, bytes);
      await assert.rejects(rebuildThinImages(staged, box), (error) => isNuwaxError(error, 'E_BASE_MISMATCH'));
      assert.equal(fileSha(thin), thinSha);
      assert.deepEqual(readdirSync(staged), ['app.tar']);
    });

    test('with the old archive gone, the base layers come from docker save of the old image', async () => {
      const { oldFile, newFile, box, staged, thin } = await twoReleases(format.make);
      await makeThinArchive(newFile, [{ file: oldFile, relative: 'images/app.tar' }], thin);
      rmSync(path.join(box, 'images', 'app.tar'));
      const asked: string[][] = [];
      const save = async (references: string[], file: string) => {
        asked.push(references);
        copyFileSync(oldFile, file);
      };
      await rebuildThinImages(staged, box, { save });
      assert.deepEqual(asked, [['app:1']]);
      assert.equal(fileSha(thin), fileSha(newFile));
      assert.deepEqual(readdirSync(staged), ['app.tar']);
    });

    test('base layers neither in the old archives nor in the running images: a base mismatch', async () => {
      const { oldFile, newFile, box, staged, thin } = await twoReleases(format.make);
      await makeThinArchive(newFile, [{ file: oldFile, relative: 'images/app.tar' }], thin);
      rmSync(path.join(box, 'images', 'app.tar'));
      const other = path.join(dir, 'other.tar');
      await format.make(other, 'other:1', [await layer('unrelated')]);
      await assert.rejects(
        rebuildThinImages(staged, box, { save: async (_references, file) => copyFileSync(other, file) }),
        (error) => isNuwaxError(error, 'E_BASE_MISMATCH'),
      );
      assert.deepEqual(readdirSync(staged), ['app.tar']);
    });
  });
}

describe('rebuilding leaves ordinary archives alone', () => {
  test('a full docker save archive in images/ is not touched', async () => {
    const staged = path.join(dir, 'images');
    mkdirSync(staged);
    const file = path.join(staged, 'full.tar');
    await legacyArchive(file, 'app:1', [await layer('x')]);
    const before = fileSha(file);
    const result = await rebuildThinImages(staged, path.join(dir, 'box'));
    assert.deepEqual(result.rebuilt, []);
    assert.equal(fileSha(file), before);
    assert.equal(await isThinArchive(file), false);
  });

  test('no images folder: nothing to do', async () => {
    assert.deepEqual(await rebuildThinImages(path.join(dir, 'absent'), dir), { rebuilt: [], reusedBytes: 0 });
  });
});
