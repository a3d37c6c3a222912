import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { extractArchive } from '../../src/archive/index.js';
import { stagePackage } from '../../src/apply/index.js';
import { freeBytes } from '../../src/fsutil/index.js';
import { withTempDir } from '../helpers/cli.js';
import { writeZeroBomb } from './bomb.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('archive: an extraction writes no more than its bound', () => {
  test('a 1 MiB tar.gz of 1 GiB of zeros is refused at once, naming the entry and the ratio, nothing staged', () =>
    withTempDir('bomb', async (work) => {
      const bomb = path.join(work, 'bomb.tar.gz');
      const size = await writeZeroBomb(bomb, { entries: 1, entrySize: GiB });
      assert.ok(size < 1.5 * MiB, `the bomb is small (${size} bytes)`);
      const staging = path.join(work, 'staging');
      const started = Date.now();
      await assert.rejects(stagePackage(bomb, staging), (error: { code: string; message: string }) => {
        assert.equal(error.code, 'E_ARCHIVE');
        assert.match(error.message, /zeros-0\.bin/);
        assert.match(error.message, /20x the 1\.\d MiB archive/);
        return true;
      });
      assert.ok(Date.now() - started < 2000, `refused quickly (${Date.now() - started} ms)`);
      assert.deepEqual(await readdir(work), ['bomb.tar.gz'], 'the staging folder is removed');
    }));

  test('many small entries that add up past the ratio are refused at the entry that crosses it', () =>
    withTempDir('bomb', async (work) => {
      const bomb = path.join(work, 'bomb.tar.gz');
      await writeZeroBomb(bomb, { entries: 40, entrySize: MiB });
      const staging = path.join(work, 'staging');
      await assert.rejects(extractArchive(bomb, staging, { maxRatio: 100 }), (error: { message: string }) =>
        /"docker\/zeros-\d+\.bin".*past its bound of 16\.0 MiB/.test(error.message),
      );
      const written = await readdir(staging);
      assert.ok(written.length <= 16, `no more than the bound was written (${written.length} files)`);
    }));

  test('the bound is never past the free space minus the reserve', () =>
    withTempDir('bomb', async (work) => {
      const bomb = path.join(work, 'bomb.tar.gz');
      await writeZeroBomb(bomb, { entries: 1, entrySize: 64 * MiB });
      const free = await freeBytes(work);
      // A reserve that leaves 8 MiB: the 64 MiB entry does not fit, whatever the ratio.
      await assert.rejects(
        extractArchive(bomb, path.join(work, 'out'), { maxRatio: null, reserveBytes: free - 8 * MiB }),
        (error: { code: string; message: string }) =>
          error.code === 'E_ARCHIVE' && /zeros-0\.bin/.test(error.message) && /free space/.test(error.message),
      );
    }));

  test('a package within the ratio extracts whole', () =>
    withTempDir('bomb', async (work) => {
      const fine = path.join(work, 'fine.tar.gz');
      await writeZeroBomb(fine, { entries: 2, entrySize: 4 * MiB });
      assert.equal(gunzipSync(await readFile(fine)).length, 8 * MiB + 3 * 512 + 1024, 'every gzip member is read');
      const result = await extractArchive(fine, path.join(work, 'fine'), { stripPrefix: 'docker/' });
      assert.equal(result.bytes, 8 * MiB);
      assert.deepEqual((await readdir(path.join(work, 'fine'))).sort(), ['zeros-0.bin', 'zeros-1.bin']);
    }));
});
