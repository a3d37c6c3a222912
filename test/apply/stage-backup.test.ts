import assert from 'node:assert/strict';
import { createWriteStream, existsSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { afterEach, beforeEach, describe, test } from 'node:test';
import tarStream from 'tar-stream';
import yazl from 'yazl';
import { applyStaged, backupPathsFor, pathsToBackUp, stagePackage } from '../../src/apply/index.js';
import { isNuwaxError } from '../../src/errors/index.js';
import { BOX, FULL_PACKAGE, layout, PATCH_OPERATIONS } from './fixtures.js';
import { PROTECTED, snapshot, temporaryFolder } from './trees.js';

describe('staging', () => {
  let folder: ReturnType<typeof temporaryFolder>;
  beforeEach(() => {
    folder = temporaryFolder('stage');
  });
  afterEach(() => folder.cleanup());

  test('a nuwax-cli zip with a docker/ prefix is staged without it and applies', async () => {
    const zip = new yazl.ZipFile();
    zip.addBuffer(Buffer.from('services: {}\n'), 'docker/docker-compose.yml');
    zip.addBuffer(Buffer.from('hello'), 'docker/web/index.html');
    zip.end();
    const file = path.join(folder.dir, 'docker.zip');
    await pipeline(zip.outputStream, createWriteStream(file));
    const dirs = layout(folder.dir, { 'old.txt': 'old', 'data/db': 'rows' }, {});
    const staged = await stagePackage(file, path.join(folder.dir, 'cache', 'fresh'));
    assert.deepEqual(
      { files: staged.files, bytes: staged.bytes, patchInfo: staged.patchInfo },
      { files: 2, bytes: 18, patchInfo: null },
    );
    const result = await applyStaged({
      ...dirs,
      stagedRoot: staged.root,
      plan: { kind: 'full', protectedPaths: PROTECTED },
    });
    assert.deepEqual(result.replaced, ['docker-compose.yml', 'web']);
    assert.deepEqual(result.deleted, ['old.txt']);
    assert.deepEqual(
      snapshot(dirs.dockerDir).map((line) => line.split(' ')[0]),
      ['data/', 'data/db', 'docker-compose.yml', 'web/', 'web/index.html'],
    );
  });

  test('a hostile package is refused while staging and nothing lands outside the staging folder', async () => {
    const pack = tarStream.pack();
    pack.entry({ name: 'ok.txt' }, 'fine');
    pack.entry({ name: '../escaped.txt' }, 'evil');
    pack.finalize();
    const file = path.join(folder.dir, 'evil.tar.gz');
    await pipeline(pack, createGzip(), createWriteStream(file));
    await assert.rejects(stagePackage(file, path.join(folder.dir, 'cache', 'staging')), (error) =>
      isNuwaxError(error, 'E_UNSAFE_PATH'),
    );
    assert.equal(existsSync(path.join(folder.dir, 'cache', 'escaped.txt')), false);
    assert.equal(existsSync(path.join(folder.dir, 'cache', 'staging')), false, 'the partial staging folder is removed');
  });
});

describe('paths to back up (SPEC 8)', () => {
  const rows: Array<{ name: string; input: Parameters<typeof pathsToBackUp>[0]; expected: string[] }> = [
    {
      name: 'a patch backs up its operation paths, outermost only, never protected ones',
      input: {
        kind: 'patch',
        operations: {
          replace: { files: ['app/app.jar', 'front/assets/x.js', 'data/seed.sql'], directories: ['front/assets'] },
          delete: { files: ['old.txt'], directories: ['upload'] },
        },
        dockerEntries: ['app', 'front', 'data'],
        stagedEntries: ['app'],
        protectedPaths: PROTECTED,
      },
      expected: ['app/app.jar', 'front/assets', 'old.txt'],
    },
    {
      name: 'a full package backs up every entry of docker/ and of the package but protected ones and .nuwax',
      input: {
        kind: 'full',
        dockerEntries: ['app', '.env', 'data', 'upload', 'old.txt'],
        stagedEntries: ['app', 'new.txt', '.nuwax', 'project_init'],
        protectedPaths: PROTECTED,
      },
      expected: ['.env', 'app', 'new.txt', 'old.txt'],
    },
    {
      name: 'a full package onto an empty box backs up the package entries (they are new: restore removes them)',
      input: { kind: 'full', dockerEntries: [], stagedEntries: ['app'], protectedPaths: [] },
      expected: ['app'],
    },
    {
      name: 'a patch without operations backs up nothing',
      input: { kind: 'patch', dockerEntries: ['app'], stagedEntries: [], protectedPaths: PROTECTED },
      expected: [],
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      assert.deepEqual(pathsToBackUp(row.input), row.expected);
    });
  }

  test('the upgrade port lists the folders and adds [backup] include', async () => {
    const folder = temporaryFolder('backup-paths');
    try {
      const dirs = layout(folder.dir, BOX, FULL_PACKAGE);
      const full = await backupPathsFor({
        plan: { kind: 'full', protectedPaths: PROTECTED },
        dockerDir: dirs.dockerDir,
        stagedRoot: dirs.stagedRoot,
        include: ['data'],
      });
      assert.deepEqual(full, [
        '.env',
        'app',
        'data',
        'docker-compose.yml',
        'empty',
        'front',
        'link-to-app',
        'new.txt',
        'old.txt',
      ]);
      const patch = await backupPathsFor({
        plan: { kind: 'patch', operations: PATCH_OPERATIONS, protectedPaths: PROTECTED },
        dockerDir: dirs.dockerDir,
        stagedRoot: dirs.stagedRoot,
        include: ['data'],
      });
      assert.deepEqual(patch, [
        'app/app.jar',
        'app/lib',
        'conf/new/deep.conf',
        'data',
        'empty',
        'front/assets',
        'front/index.html',
        'old.txt',
      ]);
    } finally {
      folder.cleanup();
    }
  });
});
