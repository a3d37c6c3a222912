import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { type ApplyPlan, applyStaged, undoApply } from '../../src/apply/index.js';
import { BOX, FULL_PACKAGE, layout, PATCH_OPERATIONS, PATCH_PACKAGE } from './fixtures.js';
import { PROTECTED, snapshot, temporaryFolder } from './trees.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'crash-child.js');
const FULL: ApplyPlan = { kind: 'full', protectedPaths: PROTECTED };
const PATCH: ApplyPlan = { kind: 'patch', operations: PATCH_OPERATIONS, protectedPaths: PROTECTED };

/** Runs the child; resolves with the signal that ended it (null when it exited normally). */
function runChild(job: object, killWhen?: () => boolean): Promise<NodeJS.Signals | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = killWhen
      ? setInterval(() => {
          if (killWhen()) {
            clearInterval(timer);
            child.kill('SIGKILL');
          }
        }, 1)
      : undefined;
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (timer) clearInterval(timer);
      if (code !== null && code !== 0) reject(new Error(`child exited ${code}: ${stderr}`));
      else resolve(signal);
    });
  });
}

function journalLines(undoDir: string): number {
  try {
    return readFileSync(path.join(undoDir, 'journal.jsonl'), 'utf8').split('\n').length - 1;
  } catch {
    return 0;
  }
}

describe('apply survives kill -9', () => {
  let folder: ReturnType<typeof temporaryFolder>;
  beforeEach(() => {
    folder = temporaryFolder('crash');
  });
  afterEach(() => folder.cleanup());

  // Steps of the full plan: journaled-but-not-renamed and renamed-but-next-not-journaled, early, middle and last.
  const points = [
    { seq: 0, phase: 'journaled' },
    { seq: 3, phase: 'done' },
    { seq: 7, phase: 'journaled' },
    { seq: 12, phase: 'done' },
  ] as const;
  for (const killAt of points) {
    test(`a full apply killed after step ${killAt.seq} is ${killAt.phase} is undone exactly by a new process`, async () => {
      const dirs = layout(folder.dir, BOX, FULL_PACKAGE);
      const box = snapshot(dirs.dockerDir);
      const staged = snapshot(dirs.stagedRoot);
      assert.equal(await runChild({ mode: 'apply', ...dirs, plan: FULL, killAt }), 'SIGKILL');
      assert.ok(
        journalLines(dirs.undoDir) >= killAt.seq + 2,
        'the header and at least the steps up to the kill are journaled',
      );
      await undoApply(dirs.undoDir, dirs.dockerDir);
      assert.deepEqual(snapshot(dirs.dockerDir), box);
      assert.deepEqual(snapshot(dirs.stagedRoot), staged);
      assert.equal(existsSync(dirs.undoDir), false);
    });
  }

  test('a patch apply killed by the parent at an arbitrary instant is undone exactly', async () => {
    const dirs = layout(folder.dir, BOX, PATCH_PACKAGE);
    const box = snapshot(dirs.dockerDir);
    // The journal is written ahead in batches: wait for the first change on disk, then kill.
    const signal = await runChild(
      { mode: 'apply', ...dirs, plan: PATCH, slowMs: 15 },
      () => !existsSync(path.join(dirs.dockerDir, 'empty')),
    );
    assert.equal(signal, 'SIGKILL');
    assert.notDeepEqual(snapshot(dirs.dockerDir), box, 'the kill fell in the middle of the apply');
    await undoApply(dirs.undoDir);
    assert.deepEqual(snapshot(dirs.dockerDir), box);
  });

  test('an undo killed half-way is finished by the next undo, exactly', async () => {
    const dirs = layout(folder.dir, BOX, FULL_PACKAGE);
    const box = snapshot(dirs.dockerDir);
    const { operations } = await applyStaged({ ...dirs, plan: FULL });
    // Reversal runs newest first: kill it after it reversed the step in the middle, before journaling that.
    assert.equal(
      await runChild({ mode: 'undo', ...dirs, plan: FULL, killAt: { seq: Math.floor(operations / 2) } }),
      'SIGKILL',
    );
    assert.notDeepEqual(snapshot(dirs.dockerDir), box);
    await undoApply(dirs.undoDir, dirs.dockerDir);
    assert.deepEqual(snapshot(dirs.dockerDir), box);
  });

  test('an undo killed half-way whose progress lines were lost (power loss) still ends exact', async () => {
    const dirs = layout(folder.dir, BOX, PATCH_PACKAGE);
    const box = snapshot(dirs.dockerDir);
    const { operations } = await applyStaged({ ...dirs, plan: PATCH });
    assert.equal(
      await runChild({ mode: 'undo', ...dirs, plan: PATCH, killAt: { seq: Math.floor(operations / 3) } }),
      'SIGKILL',
    );
    const journal = path.join(dirs.undoDir, 'journal.jsonl');
    const lines = readFileSync(journal, 'utf8')
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('{"undone"'));
    writeFileSync(journal, `${lines.join('\n')}\n`);
    await undoApply(dirs.undoDir, dirs.dockerDir);
    assert.deepEqual(snapshot(dirs.dockerDir), box);
  });

  test('a kill -9 while the journal header is being written leaves nothing to undo', async () => {
    const dirs = layout(folder.dir, BOX, PATCH_PACKAGE);
    const box = snapshot(dirs.dockerDir);
    mkdirSync(path.join(dirs.undoDir, 'originals'), { recursive: true });
    writeFileSync(path.join(dirs.undoDir, 'journal.jsonl'), '{"journal":"nuwax-un');
    assert.deepEqual(await undoApply(dirs.undoDir), { restored: 0 });
    assert.deepEqual(snapshot(dirs.dockerDir), box);
    assert.equal(existsSync(dirs.undoDir), false);
  });
});
