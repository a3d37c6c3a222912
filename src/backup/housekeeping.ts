import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { whenAbsent } from '../fsutil/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../state/index.js';

/** Whether a process with this id still runs (EPERM: it runs, as another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Temp names are `.<final name>.<pid>.<hex>.tmp` (fsutil.temporaryPathFor); backups are `backup-<id>-…`. */
const TEMPORARY = /^\.(backup-(\d+)-.+)\.(\d+)\.[0-9a-f]+\.tmp$/;

/**
 * A kill -9 during create leaves a temp archive and a `running` record: the temp file is removed
 * once its writer is gone, and the record marked failed.
 */
export async function removeStaleTemporaries(backupsDir: string, store: Store, logger: Logger): Promise<void> {
  for (const name of await readdir(backupsDir).catch(whenAbsent([] as string[]))) {
    const match = TEMPORARY.exec(name);
    if (!match || pidAlive(Number(match[3]))) continue;
    await rm(path.join(backupsDir, name), { force: true });
    const id = Number(match[2]);
    if (store.backups.get(id)?.status === 'running')
      store.backups.fail(id, 'E_BACKUP: interrupted: the process creating it stopped');
    logger.warn({ file: name, id }, 'removed the temporary file of an interrupted backup');
  }
}

const RESTORE_FOLDER = /^\.nuwax-restore(?:-old)?-\d+-(\d+)$/;

export function restoreFolders(parent: string, id: number): { staging: string; aside: string } {
  return {
    staging: path.join(parent, `.nuwax-restore-${id}-${process.pid}`),
    aside: path.join(parent, `.nuwax-restore-old-${id}-${process.pid}`),
  };
}

/**
 * Folders of a restore killed midway. The archive is the truth for the covered paths, and a new
 * restore takes them from it again, so what was set aside is not needed any more.
 */
export async function removeStaleRestoreFolders(parent: string, logger: Logger): Promise<void> {
  for (const name of await readdir(parent).catch(whenAbsent([] as string[]))) {
    const match = RESTORE_FOLDER.exec(name);
    if (!match || pidAlive(Number(match[1]))) continue;
    await rm(path.join(parent, name), { recursive: true, force: true });
    logger.warn({ folder: name }, 'removed the folder of an interrupted restore');
  }
}
