import type { CliContext } from './context.js';

/**
 * Runs `work` holding the home's lock (SPEC 10): a rollback or restore must not run under a live
 * upgrade or daemon. E_LOCKED names the holder.
 */
export async function withLock<T>(context: CliContext, command: string, work: () => Promise<T>): Promise<T> {
  const { acquireLock } = await import('../daemon/index.js');
  const lock = await acquireLock(context.paths.lockFile, command);
  try {
    return await work();
  } finally {
    await lock.release();
  }
}
