import { mkdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { createProgressReporter, type ProgressListener } from '../events/index.js';
import { ErrorCodes, NuwaxError, throwIfAborted, toNuwaxError } from '../errors/index.js';
import { fsyncDirectory } from '../fsutil/index.js';
import { type JournalStep, originalPath, UndoJournal } from './undo-journal.js';
import { MovePlanner } from './planner.js';
import { ProtectedPaths } from './protected.js';
import type { ApplyPlan, ApplyResult } from './types.js';
import { normaliseOperations, validatePlan } from './validate.js';

export interface ApplyOptions {
  dockerDir: string;
  stagedRoot: string;
  plan: ApplyPlan;
  /** A new folder on the same filesystem as docker/: the journal and the originals go there. */
  undoDir: string;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Test hook: throw E_APPLY after this many operations. */
  failAfter?: number;
  /** Test hook: called after each step is journaled (`phase: 'journaled'`) and after it is done. */
  onStep?: (step: JournalStep, phase: 'journaled' | 'done') => void | Promise<void>;
}

/** The device of a path, or of its nearest existing parent (docker/ does not exist on a first install). */
async function deviceOf(target: string): Promise<number> {
  let current = path.resolve(target);
  for (;;) {
    try {
      return (await stat(current)).dev;
    } catch (error) {
      const parent = path.dirname(current);
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === current) throw error;
      current = parent;
    }
  }
}

/** Renames only work within one filesystem: check it before the first change rather than fail half-way. */
async function checkSameFilesystem(paths: Record<string, string>): Promise<void> {
  const devices = await Promise.all(Object.values(paths).map(deviceOf));
  if (new Set(devices).size > 1) {
    const listing = Object.entries(paths)
      .map(([name, where], index) => `${name} ${where} (device ${devices[index]})`)
      .join(', ');
    throw new NuwaxError(
      ErrorCodes.E_APPLY,
      `docker/, the staging folder and the undo folder must be on one filesystem: ${listing}`,
      { details: paths },
    );
  }
}

/** Journal lines per fsync: one fsync per rename costs 10-20 ms on an SD card, in the downtime. */
const JOURNAL_BATCH = 64;

function absolute(root: string, relative: string): string {
  return relative === '' ? root : path.join(root, ...relative.split('/'));
}

async function perform(
  step: JournalStep,
  dirs: { dockerDir: string; stagedRoot: string; undoDir: string },
): Promise<string[]> {
  const target = absolute(dirs.dockerDir, step.path);
  switch (step.op) {
    case 'mkdir':
      await mkdir(target);
      return [path.dirname(target)];
    case 'remove':
      await rename(target, originalPath(dirs.undoDir, step.seq));
      return [path.dirname(target)];
    case 'install': {
      const source = absolute(dirs.stagedRoot, step.path);
      await rename(source, target);
      return [path.dirname(target), path.dirname(source)];
    }
  }
}

function describeFailure(error: unknown, step: JournalStep): NuwaxError {
  const wrapped = toNuwaxError(error, ErrorCodes.E_APPLY);
  if (wrapped.code !== ErrorCodes.E_APPLY || wrapped.cause !== error) return wrapped;
  return new NuwaxError(ErrorCodes.E_APPLY, `Cannot ${step.op} docker/${step.path}: ${wrapped.message}`, {
    cause: error,
    details: { step },
  });
}

/**
 * fsyncs folders that changed, a few at a time (their journal commits coalesce); one moved away
 * since has nothing left to sync.
 */
export async function syncFolders(folders: Iterable<string>): Promise<void> {
  const pending = [...folders];
  const worker = async (): Promise<void> => {
    for (let folder = pending.pop(); folder !== undefined; folder = pending.pop()) {
      try {
        await fsyncDirectory(folder);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/**
 * Applies a staged package to docker/ by renames (SPEC 5), each journaled and fsynced first in
 * the undo folder, the originals moved (not copied) there. On failure nothing is undone here:
 * the caller calls `undoApply`, which also works from a new process after a kill -9 (SPEC 9).
 */
export async function applyStaged(options: ApplyOptions): Promise<ApplyResult> {
  const dockerDir = path.resolve(options.dockerDir);
  const stagedRoot = path.resolve(options.stagedRoot);
  const undoDir = path.resolve(options.undoDir);
  await validatePlan(stagedRoot, options.plan);
  const planner = new MovePlanner(dockerDir, stagedRoot, new ProtectedPaths(options.plan.protectedPaths));
  const moves =
    options.plan.kind === 'full'
      ? await planner.full()
      : await planner.patch(normaliseOperations(options.plan.operations!));
  await mkdir(undoDir, { recursive: true });
  await checkSameFilesystem({ 'docker/': dockerDir, staging: stagedRoot, undo: undoDir });
  throwIfAborted(options.signal);

  const journal = await UndoJournal.create(undoDir, { dockerDir, stagedRoot, startedAt: new Date().toISOString() });
  const report = createProgressReporter('applying', moves.steps.length, options.onProgress, { unit: 'files' });
  const touched = new Set<string>([path.join(undoDir, 'originals')]);
  let done = 0;
  try {
    for (let start = 0; start < moves.steps.length; start += JOURNAL_BATCH) {
      // Group commit: a batch of lines, one fsync, then those renames. Still write-ahead: every
      // rename follows its durable line; undo copes with lines whose rename never happened.
      const batch = moves.steps
        .slice(start, start + JOURNAL_BATCH)
        .map((move, index): JournalStep => ({ seq: start + index, ...move }));
      throwIfAborted(options.signal);
      await journal.writeAll(batch);
      for (const step of batch) {
        throwIfAborted(options.signal);
        if (options.failAfter !== undefined && done >= options.failAfter) {
          throw new NuwaxError(ErrorCodes.E_APPLY, `Injected failure after ${done} operations`);
        }
        await options.onStep?.(step, 'journaled');
        try {
          for (const folder of await perform(step, { dockerDir, stagedRoot, undoDir })) touched.add(folder);
        } catch (error) {
          throw describeFailure(error, step);
        }
        done += 1;
        await options.onStep?.(step, 'done');
        report.update(done);
      }
    }
    // The renames are durable only once their folders are (power loss, SPEC 9).
    await syncFolders(touched);
  } finally {
    await journal.close();
  }
  report.finish(done);
  return {
    replaced: moves.replaced,
    deleted: moves.deleted,
    skippedProtected: moves.skippedProtected,
    undoDir,
    operations: done,
  };
}
