import { lstat, mkdir, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import { exists, fsyncDirectory } from '../fsutil/index.js';
import { syncFolders } from './apply.js';
import { discardPath, JOURNAL_FILE, type JournalStep, originalPath, readJournal, UndoJournal } from './undo-journal.js';

const PROGRESS_BATCH = 64;

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

type Reversal = 'none' | 'moved' | 'discarded';

/**
 * Reverses one journaled step. Each case checks on disk whether the step happened, since a kill
 * can fall between a journal line and its rename (lines are written in batches ahead of the
 * renames). The checks also hold when the undo itself was killed and its progress lines lost:
 * an install goes back to staging (so "left staging" stays a true test), a created directory is
 * only ever a directory where the box had none, an original is restored only if still held.
 */
async function reverse(step: JournalStep, dirs: UndoDirs): Promise<Reversal> {
  const target = absolute(dirs.dockerDir, step.path);
  switch (step.op) {
    case 'install':
      return reverseInstall(target, absolute(dirs.stagedRoot, step.path), dirs.undoDir, step.seq);
    case 'mkdir': {
      const info = await lstat(target).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return null;
        throw error;
      });
      // Not a directory: the original this step replaced is back already.
      if (!info?.isDirectory()) return 'none';
      try {
        await rmdir(target);
      } catch (error) {
        // Only this apply wrote into the folder it created; whatever is left goes with the undo folder.
        if ((error as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (error as NodeJS.ErrnoException).code !== 'EEXIST')
          throw error;
        await discard(target, dirs.undoDir, step.seq, '');
      }
      return 'moved';
    }
    case 'remove':
      return reverseRemove(target, originalPath(dirs.undoDir, step.seq), dirs.undoDir, step.seq);
  }
}

/** Installed iff it left staging and arrived in docker/; it goes back to staging. */
async function reverseInstall(target: string, source: string, undoDir: string, seq: number): Promise<Reversal> {
  // Checked first: a rename onto an existing file would silently replace it.
  if (await present(source)) return 'none';
  try {
    await rename(target, source);
    return 'moved';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (!(await present(target))) return 'none';
  // The staging folder it came from is gone: it waits in the undo folder, deleted with it.
  await discard(target, undoDir, seq, '');
  return 'discarded';
}

/**
 * Restores an original still held in the undo folder. The rename goes first: ENOENT with no
 * original means the remove never happened, and the box's entry must then stay. Something else
 * standing at the path (written after the apply) is replaced or, where rename refuses, moved aside.
 */
async function reverseRemove(target: string, original: string, undoDir: string, seq: number): Promise<Reversal> {
  try {
    await rename(original, target);
    return 'moved';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !(await present(original))) return 'none';
    if (code !== 'EISDIR' && code !== 'ENOTDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM')
      throw error;
  }
  await discard(target, undoDir, seq, '.displaced');
  await rename(original, target);
  return 'moved';
}

/**
 * Reverses an apply exactly from its journal (SPEC 9), by renames, never from a backup. Idempotent,
 * and safe in a new process after a kill -9 at any point of the apply or of an earlier undo.
 * Without a journal there is nothing to undo.
 */
export async function undoApply(
  undoDir: string,
  dockerDir?: string,
  options: {
    /** Test hook: called after each reversal, before it is journaled. */ onReverse?: (
      step: JournalStep,
    ) => void | Promise<void>;
  } = {},
): Promise<{ restored: number }> {
  const folder = path.resolve(undoDir);
  const contents = await readJournal(folder);
  if (!contents) {
    await rm(folder, { recursive: true, force: true });
    return { restored: 0 };
  }
  let restored = 0;
  if (contents.header) {
    const dirs: UndoDirs = {
      dockerDir: path.resolve(dockerDir ?? contents.header.dockerDir),
      stagedRoot: contents.header.stagedRoot,
      undoDir: folder,
    };
    const journal = await UndoJournal.reopen(folder);
    const touched = new Set<string>();
    const pending: object[] = [];
    try {
      for (const step of [...contents.steps].reverse()) {
        if (contents.undone.has(step.seq)) continue;
        let reversal: Reversal;
        try {
          reversal = await reverse(step, dirs);
        } catch (error) {
          const wrapped = toNuwaxError(error, ErrorCodes.E_ROLLBACK);
          throw new NuwaxError(
            wrapped.code === ErrorCodes.E_DISK_FULL ? wrapped.code : ErrorCodes.E_ROLLBACK,
            `Cannot undo ${step.op} of docker/${step.path}: ${wrapped.message}`,
            {
              cause: error,
              details: { step, undoDir: folder },
            },
          );
        }
        if (reversal !== 'none') restored += 1;
        await options.onReverse?.(step);
        touched.add(path.dirname(absolute(dirs.dockerDir, step.path)));
        touched.add(path.dirname(absolute(dirs.stagedRoot, step.path)));
        // Progress lines spare work on a rerun; only a discarded install must be durable at once,
        // since staging can then no longer tell that it was reversed.
        pending.push({ undone: step.seq });
        if (reversal === 'discarded' || pending.length >= PROGRESS_BATCH) {
          await journal.writeAll(pending.splice(0), reversal === 'discarded');
        }
      }
      await journal.writeAll(pending.splice(0));
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
