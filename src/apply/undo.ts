import { lstat, mkdir, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import { exists, fsyncDirectory } from '../fsutil/index.js';
import { syncFolders } from './apply.js';
import { discardPath, JOURNAL_FILE, type JournalStep, originalPath, readJournal, UndoJournal } from './journal.js';

function absolute(root: string, relative: string): string {
  return relative === '' ? root : path.join(root, ...relative.split('/'));
}

async function present(target: string): Promise<boolean> {
  try {
    await lstat(target);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw error;
  }
}

/** Moves something out of the way into the undo folder's discard area (deleted with the folder). */
async function discard(target: string, undoDir: string, seq: number, suffix: string): Promise<void> {
  const destination = `${discardPath(undoDir, seq)}${suffix}`;
  await mkdir(path.dirname(destination), { recursive: true });
  await rm(destination, { recursive: true, force: true });
  await rename(target, destination);
}

interface UndoDirs {
  dockerDir: string;
  stagedRoot: string;
  undoDir: string;
}

/**
 * Reverses one journaled step. Each case checks on disk whether the step happened, since a
 * kill -9 can fall between the journal line and the rename; steps are reversed newest first and
 * each reversal is journaled, so a path is never looked at in a state the check does not expect.
 * Returns whether something moved.
 */
async function reverse(step: JournalStep, dirs: UndoDirs): Promise<boolean> {
  const target = absolute(dirs.dockerDir, step.path);
  switch (step.op) {
    case 'install': {
      const source = absolute(dirs.stagedRoot, step.path);
      // Installed iff it left staging and arrived in docker/.
      if (!(await present(target)) || (await present(source))) return false;
      if (await present(path.dirname(source))) await rename(target, source);
      else await discard(target, dirs.undoDir, step.seq, '');
      return true;
    }
    case 'mkdir': {
      if (!(await present(target))) return false;
      try {
        await rmdir(target);
      } catch (error) {
        // Only this apply wrote into the folder it created; whatever is left goes with the undo folder.
        if ((error as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        await discard(target, dirs.undoDir, step.seq, '');
      }
      return true;
    }
    case 'remove': {
      const original = originalPath(dirs.undoDir, step.seq);
      if (!(await present(original))) return false;
      if (await present(target)) await discard(target, dirs.undoDir, step.seq, '.displaced');
      await rename(original, target);
      return true;
    }
  }
}

/**
 * Reverses an apply exactly from its journal (SPEC 9), by renames, never from a backup. Idempotent,
 * and safe in a new process after a kill -9 at any point of the apply or of an earlier undo.
 * Without a journal there is nothing to undo.
 */
export async function undoApply(
  undoDir: string,
  dockerDir?: string,
  options: { /** Test hook: called after each reversal, before it is journaled. */ onReverse?: (step: JournalStep) => void | Promise<void> } = {},
): Promise<{ restored: number }> {
  const folder = path.resolve(undoDir);
  const contents = await readJournal(folder);
  if (!contents) {
    await rm(folder, { recursive: true, force: true });
    return { restored: 0 };
  }
  let restored = 0;
  if (contents.header) {
    const dirs: UndoDirs = { dockerDir: path.resolve(dockerDir ?? contents.header.dockerDir), stagedRoot: contents.header.stagedRoot, undoDir: folder };
    const journal = await UndoJournal.reopen(folder);
    const touched = new Set<string>();
    try {
      for (const step of [...contents.steps].reverse()) {
        if (contents.undone.has(step.seq)) continue;
        try {
          if (await reverse(step, dirs)) restored += 1;
        } catch (error) {
          const wrapped = toNuwaxError(error, ErrorCodes.E_ROLLBACK);
          throw new NuwaxError(wrapped.code === ErrorCodes.E_DISK_FULL ? wrapped.code : ErrorCodes.E_ROLLBACK, `Cannot undo ${step.op} of docker/${step.path}: ${wrapped.message}`, {
            cause: error,
            details: { step, undoDir: folder },
          });
        }
        await options.onReverse?.(step);
        touched.add(path.dirname(absolute(dirs.dockerDir, step.path)));
        touched.add(path.dirname(absolute(dirs.stagedRoot, step.path)));
        await journal.write({ undone: step.seq });
      }
      await syncFolders(touched);
    } finally {
      await journal.close();
    }
  }
  await removeUndoFolder(folder);
  return { restored };
}

/** The journal goes first: a folder without it is never mistaken for an unfinished apply. */
async function removeUndoFolder(folder: string): Promise<void> {
  await rm(path.join(folder, JOURNAL_FILE), { force: true });
  if (await exists(folder)) await fsyncDirectory(folder);
  await rm(folder, { recursive: true, force: true });
}

/** After a commit (SPEC 8): the originals are no longer needed. */
export async function discardUndo(undoDir: string): Promise<void> {
  await removeUndoFolder(path.resolve(undoDir));
}

/** An apply left a journal that was neither undone nor discarded (crash recovery, SPEC 9). */
export async function hasPendingUndo(undoDir: string): Promise<boolean> {
  return exists(path.join(undoDir, JOURNAL_FILE));
}
