import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { type ApplyPlan, applyStaged, discardUndo, hasPendingUndo, undoApply } from '../../src/apply/index.js';
import { isNuwaxError } from '../../src/errors/index.js';
import type { ProgressEvent } from '../../src/events/index.js';
import { AFTER_FULL, AFTER_PATCH, BOX, FULL_PACKAGE, layout, PATCH_OPERATIONS, PATCH_PACKAGE } from './fixtures.js';
import { PROTECTED, snapshot, temporaryFolder, writeTree } from './trees.js';

const FULL: ApplyPlan = { kind: 'full', protectedPaths: PROTECTED };
const PATCH: ApplyPlan = { kind: 'patch', operations: PATCH_OPERATIONS, protectedPaths: PROTECTED };

describe('apply', () => {
  let folder: ReturnType<typeof temporaryFolder>;
  beforeEach(() => {
    folder = temporaryFolder('apply');
  });
  afterEach(() => folder.cleanup());

  test('a full apply replaces every entry of docker/, removes the others and leaves protected paths byte for byte', async () => {
    const dirs = layout(folder.dir, BOX, FULL_PACKAGE);
    writeTree(dirs.expected, AFTER_FULL);
    const result = await applyStaged({ ...dirs, plan: FULL });
    assert.deepEqual(snapshot(dirs.dockerDir), snapshot(dirs.expected));
    assert.deepEqual(result.skippedProtected, ['data']);
    assert.deepEqual(result.replaced, ['.env', 'app', 'docker-compose.yml', 'front', 'new.txt', 'project_init']);
    assert.deepEqual(result.deleted, ['empty', 'link-to-app', 'old.txt']);
    assert.equal(readFileSync(path.join(dirs.dockerDir, 'data/db.sqlite'), 'utf8'), 'precious rows');
    assert.equal(existsSync(path.join(dirs.dockerDir, '.nuwax')), false, '.nuwax/ is metadata, never applied');
    assert.equal(await hasPendingUndo(dirs.undoDir), true);
  });

  test('a full apply of a first install creates docker/', async () => {
    const dirs = layout(folder.dir, null, FULL_PACKAGE);
    const result = await applyStaged({ ...dirs, plan: FULL });
    const { '.nuwax/meta.json': _meta, ...expected } = FULL_PACKAGE;
    writeTree(dirs.expected, expected);
    assert.deepEqual(snapshot(dirs.dockerDir), snapshot(dirs.expected));
    assert.deepEqual(result.skippedProtected, [], 'a protected path the box does not have is installed');
    await undoApply(dirs.undoDir);
    assert.deepEqual(snapshot(dirs.dockerDir), ['<absent>'], 'undo removes the docker/ it created');
  });

  test('a patch deletes first and then replaces: a path in both ends replaced, a replaced directory is replaced whole', async () => {
    const dirs = layout(folder.dir, BOX, PATCH_PACKAGE);
    writeTree(dirs.expected, AFTER_PATCH);
    const result = await applyStaged({ ...dirs, plan: PATCH });
    assert.deepEqual(snapshot(dirs.dockerDir), snapshot(dirs.expected));
    assert.deepEqual(result.replaced.sort(), ['app/app.jar', 'conf/new/deep.conf', 'front/assets', 'front/index.html']);
    assert.deepEqual(result.deleted.sort(), ['app/lib', 'empty', 'old.txt']);
  });

  test('a patch never deletes or overwrites a protected path, and reports what it skipped', async () => {
    const dirs = layout(folder.dir, BOX, { 'data/db.sqlite': 'evil', 'upload/u.png': 'evil', 'app/app.jar': 'jar v2' });
    const before = snapshot(path.join(dirs.dockerDir, 'data'));
    const plan: ApplyPlan = {
      kind: 'patch',
      protectedPaths: PROTECTED,
      operations: {
        replace: { files: ['data/db.sqlite', 'app/app.jar'], directories: ['upload'] },
        delete: { files: ['data/sub/file'], directories: ['data'] },
      },
    };
    const result = await applyStaged({ ...dirs, plan });
    assert.deepEqual(snapshot(path.join(dirs.dockerDir, 'data')), before);
    assert.equal(readFileSync(path.join(dirs.dockerDir, 'upload/u.png'), 'utf8'), 'image bytes');
    assert.equal(readFileSync(path.join(dirs.dockerDir, 'app/app.jar'), 'utf8'), 'jar v2');
    assert.deepEqual(result.skippedProtected.sort(), ['data', 'data/db.sqlite', 'data/sub/file', 'upload']);
  });

  test('a protected path inside a replaced directory survives: the directory is replaced entry by entry', async () => {
    const dirs = layout(
      folder.dir,
      { 'app/config/local.yml': 'mine', 'app/old.bin': 'old', 'app/a.txt': 'a1' },
      { 'app/a.txt': 'a2', 'app/b.txt': 'b2', 'app/config/local.yml': 'theirs' },
    );
    const result = await applyStaged({ ...dirs, plan: { kind: 'full', protectedPaths: ['app/config'] } });
    writeTree(dirs.expected, { 'app/config/local.yml': 'mine', 'app/a.txt': 'a2', 'app/b.txt': 'b2' });
    assert.deepEqual(snapshot(dirs.dockerDir), snapshot(dirs.expected));
    assert.deepEqual(result.skippedProtected, ['app/config']);
  });

  test('undo after a full apply restores docker/ and the staging folder exactly', async () => {
    const dirs = layout(folder.dir, BOX, FULL_PACKAGE);
    const box = snapshot(dirs.dockerDir);
    const staged = snapshot(dirs.stagedRoot);
    await applyStaged({ ...dirs, plan: FULL });
    const { restored } = await undoApply(dirs.undoDir, dirs.dockerDir);
    assert.ok(restored > 0);
    assert.deepEqual(snapshot(dirs.dockerDir), box);
    assert.deepEqual(
      snapshot(dirs.stagedRoot),
      staged,
      'installed entries go back to staging, so the apply can be retried',
    );
    assert.equal(existsSync(dirs.undoDir), false);
    assert.deepEqual(
      await undoApply(dirs.undoDir, dirs.dockerDir),
      { restored: 0 },
      'a second undo finds nothing to do',
    );
    assert.deepEqual(snapshot(dirs.dockerDir), box);
  });

  test('undo after a patch apply restores docker/ exactly', async () => {
    const dirs = layout(folder.dir, BOX, PATCH_PACKAGE);
    const box = snapshot(dirs.dockerDir);
    await applyStaged({ ...dirs, plan: PATCH });
    await undoApply(dirs.undoDir);
    assert.deepEqual(snapshot(dirs.dockerDir), box);
  });

  for (const kind of ['full', 'patch'] as const) {
    test(`a ${kind} apply that fails after any number of operations is undone exactly`, async () => {
      const plan = kind === 'full' ? FULL : PATCH;
      const probe = layout(path.join(folder.dir, 'probe'), BOX, kind === 'full' ? FULL_PACKAGE : PATCH_PACKAGE);
      const total = (await applyStaged({ ...probe, plan })).operations;
      assert.ok(total >= 8, `the plan has ${total} operations`);
      // Each failure point in its own folder, run side by side: they only wait on fsyncs.
      const failures = Array.from({ length: total }, async (_, failAfter) => {
        const dirs = layout(
          path.join(folder.dir, String(failAfter)),
          BOX,
          kind === 'full' ? FULL_PACKAGE : PATCH_PACKAGE,
        );
        const box = snapshot(dirs.dockerDir);
        const staged = snapshot(dirs.stagedRoot);
        await assert.rejects(applyStaged({ ...dirs, plan, failAfter }), (error) => isNuwaxError(error, 'E_APPLY'));
        if (failAfter === Math.floor(total / 2))
          assert.notDeepEqual(snapshot(dirs.dockerDir), box, 'half-way, docker/ is mixed');
        await undoApply(dirs.undoDir, dirs.dockerDir);
        assert.deepEqual(snapshot(dirs.dockerDir), box, `after a failure at operation ${failAfter}`);
        assert.deepEqual(snapshot(dirs.stagedRoot), staged);
      });
      await Promise.all(failures);
    });
  }

  test('an apply cancelled half-way stops with E_ABORTED and undo restores the box', async () => {
    const dirs = layout(folder.dir, BOX, FULL_PACKAGE);
    const box = snapshot(dirs.dockerDir);
    const controller = new AbortController();
    const apply = applyStaged({
      ...dirs,
      plan: FULL,
      signal: controller.signal,
      onStep: (step, phase) => {
        if (step.seq === 4 && phase === 'done') controller.abort();
      },
    });
    await assert.rejects(apply, (error) => isNuwaxError(error, 'E_ABORTED'));
    assert.notDeepEqual(snapshot(dirs.dockerDir), box);
    await undoApply(dirs.undoDir);
    assert.deepEqual(snapshot(dirs.dockerDir), box);
  });

  test('an apply reports its progress in operations under the applying step', async () => {
    const dirs = layout(folder.dir, BOX, PATCH_PACKAGE);
    const events: ProgressEvent[] = [];
    const result = await applyStaged({ ...dirs, plan: PATCH, onProgress: (event) => events.push(event) });
    const last = events.at(-1)!;
    assert.deepEqual(
      [last.step, last.unit, last.done, last.total],
      ['applying', 'files', result.operations, result.operations],
    );
  });

  test('the originals are moved into the undo folder, not copied', async () => {
    const dirs = layout(folder.dir, BOX, PATCH_PACKAGE);
    await applyStaged({ ...dirs, plan: PATCH });
    const originals = readdirSync(path.join(dirs.undoDir, 'originals'));
    assert.ok(originals.length >= 5);
    const journal = readFileSync(path.join(dirs.undoDir, 'journal.jsonl'), 'utf8').trim().split('\n');
    assert.equal(JSON.parse(journal[0]!).journal, 'nuwax-undo');
    assert.equal(
      journal.length - 1,
      readdirSync(path.join(dirs.undoDir, 'originals')).length +
        journal.filter((line) => /"op":"(install|mkdir)"/.test(line)).length,
    );
  });

  test('discardUndo after a commit drops the originals, and undo then changes nothing', async () => {
    const dirs = layout(folder.dir, BOX, PATCH_PACKAGE);
    await applyStaged({ ...dirs, plan: PATCH });
    const applied = snapshot(dirs.dockerDir);
    await discardUndo(dirs.undoDir);
    assert.equal(existsSync(dirs.undoDir), false);
    assert.deepEqual(await undoApply(dirs.undoDir), { restored: 0 });
    assert.deepEqual(snapshot(dirs.dockerDir), applied);
  });

  test('an apply refuses an undo folder that holds an earlier journal, changing nothing', async () => {
    const dirs = layout(folder.dir, BOX, PATCH_PACKAGE);
    writeTree(dirs.undoDir, { 'journal.jsonl': '{"journal":"nuwax-undo","version":1}\n' });
    const box = snapshot(dirs.dockerDir);
    await assert.rejects(
      applyStaged({ ...dirs, plan: PATCH }),
      (error) => isNuwaxError(error, 'E_APPLY') && /earlier apply/.test(error.message),
    );
    assert.deepEqual(snapshot(dirs.dockerDir), box);
  });

  test('a symlink on the box is never written through: it is replaced by the directory the package needs, and undo puts it back', async () => {
    const dirs = layout(folder.dir, { lib: { link: '../outside' }, 'keep.txt': 'k' }, { 'lib/x.so': 'x' });
    writeTree(path.join(folder.dir, 'outside'), { 'x.so': 'outside file' });
    const box = snapshot(dirs.dockerDir);
    const outside = snapshot(path.join(folder.dir, 'outside'));
    await applyStaged({
      ...dirs,
      plan: {
        kind: 'patch',
        protectedPaths: [],
        operations: { replace: { files: ['lib/x.so'], directories: [] }, delete: { files: [], directories: [] } },
      },
    });
    assert.deepEqual(snapshot(path.join(folder.dir, 'outside')), outside);
    assert.equal(readFileSync(path.join(dirs.dockerDir, 'lib/x.so'), 'utf8'), 'x');
    await undoApply(dirs.undoDir);
    assert.deepEqual(snapshot(dirs.dockerDir), box);
  });

  test('a file the new version wrote into a folder the apply created goes with the undo, not into the old tree', async () => {
    const dirs = layout(folder.dir, BOX, PATCH_PACKAGE);
    const box = snapshot(dirs.dockerDir);
    await applyStaged({ ...dirs, plan: PATCH });
    writeFileSync(path.join(dirs.dockerDir, 'conf/new/stray.log'), 'written by the new version');
    await undoApply(dirs.undoDir);
    assert.deepEqual(snapshot(dirs.dockerDir), box);
  });

  test('a delete of a path the box does not have is a no-op', async () => {
    const dirs = layout(folder.dir, { 'a.txt': 'a' }, {});
    const result = await applyStaged({
      ...dirs,
      plan: {
        kind: 'patch',
        protectedPaths: [],
        operations: {
          replace: { files: [], directories: [] },
          delete: { files: ['missing.txt', 'a.txt/below'], directories: ['gone'] },
        },
      },
    });
    assert.deepEqual(result.deleted, []);
    assert.equal(result.operations, 0);
    assert.equal(readFileSync(path.join(dirs.dockerDir, 'a.txt'), 'utf8'), 'a');
  });
});

describe('apply refuses a bad plan before any change', () => {
  let folder: ReturnType<typeof temporaryFolder>;
  beforeEach(() => {
    folder = temporaryFolder('apply-refuse');
  });
  afterEach(() => folder.cleanup());

  const unsafe = ['../escape.txt', '/etc/passwd', 'C:/windows/x', 'a/../../b', 'nul\0byte', '.nuwax/patch.json', ''];
  for (const bad of unsafe) {
    test(`an unsafe operation path ${JSON.stringify(bad)} is refused and nothing changes`, async () => {
      const dirs = layout(folder.dir, BOX, PATCH_PACKAGE);
      const box = snapshot(dirs.dockerDir);
      const plan: ApplyPlan = {
        kind: 'patch',
        protectedPaths: PROTECTED,
        operations: {
          replace: { files: ['app/app.jar'], directories: [] },
          delete: { files: ['old.txt', bad], directories: [] },
        },
      };
      await assert.rejects(applyStaged({ ...dirs, plan }), (error) => isNuwaxError(error, 'E_UNSAFE_PATH'));
      assert.deepEqual(snapshot(dirs.dockerDir), box);
      assert.equal(existsSync(dirs.undoDir), false, 'no journal was started');
    });
  }

  test('a patch naming a file the package does not hold is refused and nothing changes', async () => {
    const dirs = layout(folder.dir, BOX, PATCH_PACKAGE);
    const box = snapshot(dirs.dockerDir);
    const plan: ApplyPlan = {
      kind: 'patch',
      protectedPaths: PROTECTED,
      operations: {
        ...PATCH_OPERATIONS,
        replace: { files: ['app/app.jar', 'app/missing.jar'], directories: ['front/assets'] },
      },
    };
    await assert.rejects(
      applyStaged({ ...dirs, plan }),
      (error) => isNuwaxError(error, 'E_APPLY') && /app\/missing\.jar \(missing\)/.test(error.message),
    );
    assert.deepEqual(snapshot(dirs.dockerDir), box);
    assert.equal(existsSync(dirs.undoDir), false);
  });

  test('a patch naming a directory that the package holds as a file is refused and nothing changes', async () => {
    const dirs = layout(folder.dir, BOX, PATCH_PACKAGE);
    const box = snapshot(dirs.dockerDir);
    const plan: ApplyPlan = {
      kind: 'patch',
      protectedPaths: PROTECTED,
      operations: { ...PATCH_OPERATIONS, replace: { files: [], directories: ['app/app.jar'] } },
    };
    await assert.rejects(
      applyStaged({ ...dirs, plan }),
      (error) => isNuwaxError(error, 'E_APPLY') && /expected a directory/.test(error.message),
    );
    assert.deepEqual(snapshot(dirs.dockerDir), box);
  });

  test('an unsafe protected path in the configuration is refused', async () => {
    const dirs = layout(folder.dir, BOX, FULL_PACKAGE);
    const box = snapshot(dirs.dockerDir);
    await assert.rejects(applyStaged({ ...dirs, plan: { kind: 'full', protectedPaths: ['../data'] } }), (error) =>
      isNuwaxError(error, 'E_UNSAFE_PATH'),
    );
    assert.deepEqual(snapshot(dirs.dockerDir), box);
  });
});
