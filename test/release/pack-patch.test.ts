import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { applyStaged, checkPatchBase, stagePackage, undoApply } from '../../src/apply/index.js';
import { createTarGz, listArchive } from '../../src/archive/index.js';
import { isNuwaxError } from '../../src/errors/index.js';
import { parseManifest } from '../../src/manifest/index.js';
import { buildManifest, packRelease, patchRelease } from '../../src/release/index.js';
import { PROTECTED, snapshot, temporaryFolder, type TreeSpec, writeTree } from '../apply/trees.js';

const OLD: TreeSpec = {
  'docker-compose.yml': 'image: app:1\n',
  'app/app.jar': 'jar 1',
  'app/same.txt': 'unchanged',
  'app/run.sh': { content: 'echo run', mode: 0o644 },
  'app/lib/a.so': 'a',
  'front/index.html': 'index 1',
  'gone/one.txt': 'bye',
  'gone/deep/two.txt': 'bye too',
  'becomes-file/x.txt': 'x',
  'becomes-dir': 'a file first',
  current: { link: 'app' },
  'obsolete.txt': 'obsolete',
};

const NEW: TreeSpec = {
  'docker-compose.yml': 'image: app:2\n',
  'app/app.jar': 'jar 2',
  'app/same.txt': 'unchanged',
  'app/run.sh': { content: 'echo run', mode: 0o755 },
  'app/lib/a.so': 'a',
  'app/lib/b.so': 'b new',
  'front/index.html': 'index 1',
  'front/new/assets/y.js': 'y',
  'front/new/empty': { dir: true },
  'becomes-file': 'now a file',
  'becomes-dir/inside.txt': 'now a directory',
  current: { link: 'front' },
  'migrations/up-2.0.0.sh': { content: '#!/bin/sh\n', mode: 0o755 },
};

describe('release pack and patch', () => {
  let folder: ReturnType<typeof temporaryFolder>;
  let oldDir: string;
  let newDir: string;
  beforeEach(() => {
    folder = temporaryFolder('release');
    oldDir = path.join(folder.dir, 'v1');
    newDir = path.join(folder.dir, 'v2');
    writeTree(oldDir, OLD);
    writeTree(newDir, NEW);
  });
  afterEach(() => folder.cleanup());

  test('a patch lists directories new or gone as a whole, and files otherwise', async () => {
    const output = path.join(folder.dir, 'out', 'app-2.0.0-patch.tar.gz');
    const sidecar = await patchRelease({ oldDir, newDir, from: '1.0.0', to: '2.0.0', arch: 'x86_64', output });
    assert.deepEqual(sidecar.operations, {
      replace: {
        files: ['app/app.jar', 'app/lib/b.so', 'app/run.sh', 'becomes-file', 'current', 'docker-compose.yml'],
        directories: ['becomes-dir', 'front/new', 'migrations'],
      },
      delete: { files: ['obsolete.txt'], directories: ['gone'] },
    });
    const names = (await listArchive(output)).map((entry) => entry.name).filter((name) => !name.endsWith('/'));
    assert.ok(!names.includes('app/same.txt') && !names.includes('front/index.html'), 'unchanged files are not packed');
    assert.ok(names.includes('.nuwax/patch.json') && names.includes('front/new/assets/y.js'));
  });

  test('the sidecars carry exactly the keys release manifest reads, with the size and sha256 of the file', async () => {
    const full = path.join(folder.dir, 'app-2.0.0.tar.gz');
    const patch = path.join(folder.dir, 'app-2.0.0-patch.tar.gz');
    const packed = await packRelease({ dir: newDir, version: '2.0.0', arch: 'x86_64', output: full });
    const patched = await patchRelease({ oldDir, newDir, from: '1.0.0', to: '2.0.0', arch: 'aarch64', output: patch });
    assert.deepEqual(Object.keys(packed), ['kind', 'version', 'arch', 'size', 'sha256']);
    assert.deepEqual(Object.keys(patched), ['kind', 'version', 'arch', 'from', 'operations', 'size', 'sha256']);
    for (const [file, sidecar] of [
      [full, packed],
      [patch, patched],
    ] as const) {
      const bytes = readFileSync(file);
      assert.equal(sidecar.size, bytes.length);
      assert.equal(sidecar.sha256, createHash('sha256').update(bytes).digest('hex'));
      assert.deepEqual(JSON.parse(readFileSync(`${file}.release.json`, 'utf8')), sidecar);
    }
    assert.equal(patched.kind, 'patch');
    assert.deepEqual(patched.from, ['1.0.0']);
    const manifest = parseManifest(
      JSON.stringify(await buildManifest({ version: '2.0.0', packages: [full, patch] })),
      'test',
    );
    assert.equal(manifest.platforms?.x86_64?.size, packed.size);
    assert.deepEqual(manifest.patch?.aarch64?.from, ['1.0.0']);
  });

  test('a patch between two trees applied to the old tree gives the new tree exactly, and undo gives the old one back', async () => {
    const output = path.join(folder.dir, 'patch.tar.gz');
    const sidecar = await patchRelease({ oldDir, newDir, from: '1.0.0', to: '2.0.0', arch: 'x86_64', output });
    const box = path.join(folder.dir, 'home', 'docker');
    cpSync(oldDir, box, { recursive: true, verbatimSymlinks: true });
    const staged = await stagePackage(output, path.join(folder.dir, 'home', 'cache', 'staging'));
    assert.deepEqual(staged.patchInfo?.operations, sidecar.operations);
    assert.equal(staged.patchInfo?.from, '1.0.0');
    assert.deepEqual(await checkPatchBase(box, staged.patchInfo!), { ok: true, mismatches: [] });
    const undoDir = path.join(folder.dir, 'home', 'cache', 'undo', '1');
    await applyStaged({
      dockerDir: box,
      stagedRoot: staged.root,
      undoDir,
      plan: { kind: 'patch', operations: sidecar.operations!, protectedPaths: PROTECTED },
    });
    assert.deepEqual(snapshot(box), snapshot(newDir));
    await undoApply(undoDir);
    assert.deepEqual(snapshot(box), snapshot(oldDir));
  });

  test("a full package staged and applied gives the deployment folder, keeping the box's protected data", async () => {
    const output = path.join(folder.dir, 'full.tar.gz');
    await packRelease({ dir: newDir, version: '2.0.0', arch: 'x86_64', output });
    const box = path.join(folder.dir, 'home', 'docker');
    cpSync(oldDir, box, { recursive: true, verbatimSymlinks: true });
    writeTree(box, { 'data/db': 'rows' });
    const staged = await stagePackage(output, path.join(folder.dir, 'home', 'cache', 'staging'));
    assert.equal(staged.patchInfo, null);
    await applyStaged({
      dockerDir: box,
      stagedRoot: staged.root,
      undoDir: path.join(folder.dir, 'home', 'cache', 'undo'),
      plan: { kind: 'full', protectedPaths: PROTECTED },
    });
    writeTree(newDir, { 'data/db': 'rows' });
    assert.deepEqual(snapshot(box), snapshot(newDir));
  });

  test('the base check finds a file edited by hand, one removed and one added where the patch expects none', async () => {
    const output = path.join(folder.dir, 'patch.tar.gz');
    await patchRelease({ oldDir, newDir, from: '1.0.0', to: '2.0.0', arch: 'x86_64', output });
    const staged = await stagePackage(output, path.join(folder.dir, 'staging'));
    writeFileSync(path.join(oldDir, 'app/app.jar'), 'patched by hand');
    writeFileSync(path.join(oldDir, 'app/lib/b.so'), 'put there by hand');
    rmSync(path.join(oldDir, 'gone/deep/two.txt'));
    const result = await checkPatchBase(oldDir, staged.patchInfo!);
    assert.equal(result.ok, false);
    const sha = (text: string) => createHash('sha256').update(text).digest('hex');
    assert.deepEqual(result.mismatches, [
      { path: 'app/app.jar', expected: sha('jar 1'), actual: sha('patched by hand') },
      { path: 'app/lib/b.so', expected: null, actual: sha('put there by hand') },
      { path: 'gone/deep/two.txt', expected: sha('bye too'), actual: null },
    ]);
    const protectedResult = await checkPatchBase(oldDir, staged.patchInfo!, { protectedPaths: ['app', 'gone'] });
    assert.deepEqual(protectedResult, { ok: true, mismatches: [] }, 'paths under protected paths are not compared');
  });

  test('staging strips a docker/ prefix from every entry', async () => {
    const source = path.join(folder.dir, 'legacy');
    cpSync(newDir, path.join(source, 'docker'), { recursive: true, verbatimSymlinks: true });
    const output = path.join(folder.dir, 'legacy.tar.gz');
    await createTarGz(source, ['docker'], output);
    const staged = await stagePackage(output, path.join(folder.dir, 'staging'));
    assert.deepEqual(snapshot(staged.root), snapshot(newDir));
  });

  test('staging refuses a folder that is not empty and leaves it alone', async () => {
    const output = path.join(folder.dir, 'full.tar.gz');
    await packRelease({ dir: newDir, version: '2.0.0', arch: 'x86_64', output });
    const staging = path.join(folder.dir, 'staging');
    writeTree(staging, { 'leftover.txt': 'mine' });
    await assert.rejects(stagePackage(output, staging), (error) => isNuwaxError(error, 'E_APPLY'));
    assert.equal(readFileSync(path.join(staging, 'leftover.txt'), 'utf8'), 'mine');
  });

  test('staging a package with a malformed .nuwax/patch.json fails with E_ARCHIVE', async () => {
    const source = path.join(folder.dir, 'bad');
    writeTree(source, { 'a.txt': 'a', '.nuwax/patch.json': '{"base": {"a.txt": "not-a-hash"}}' });
    const output = path.join(folder.dir, 'bad.tar.gz');
    await createTarGz(source, ['.nuwax', 'a.txt'], output);
    await assert.rejects(
      stagePackage(output, path.join(folder.dir, 'staging')),
      (error) => isNuwaxError(error, 'E_ARCHIVE') && /base\["a.txt"\]/.test(error.message),
    );
    assert.equal(existsSync(path.join(folder.dir, 'staging')), false, 'the staging folder is removed');
  });

  test('pack and patch refuse a bad version or arch before writing anything', async () => {
    const output = path.join(folder.dir, 'x.tar.gz');
    await assert.rejects(packRelease({ dir: newDir, version: 'two', arch: 'x86_64', output }), (error) =>
      isNuwaxError(error, 'E_USAGE'),
    );
    await assert.rejects(patchRelease({ oldDir, newDir, from: '1.0.0', to: '2.0.0', arch: 'mips', output }), (error) =>
      isNuwaxError(error, 'E_USAGE'),
    );
    await assert.rejects(
      packRelease({ dir: path.join(folder.dir, 'nope'), version: '2.0.0', arch: 'x86_64', output }),
      (error) => isNuwaxError(error, 'E_USAGE'),
    );
    assert.deepEqual(
      snapshot(folder.dir).filter((line) => line.startsWith('x.tar.gz')),
      [],
    );
  });
});
