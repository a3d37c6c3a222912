import { readFile, rm, writeFile } from 'node:fs/promises';
import { mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCodes, NuwaxError } from '../errors/index.js';

interface LockHolder {
  pid: number;
  hostname: string;
  command: string;
  started_at: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One upgrading process per home (SPEC 10): an O_EXCL lock file naming its holder. A lock whose
 * process is gone (crash, kill -9) is taken over, so it is never held forever.
 */
export async function acquireLock(lockFile: string, command: string): Promise<{ release(): Promise<void> }> {
  mkdirSync(path.dirname(lockFile), { recursive: true });
  const me: LockHolder = { pid: process.pid, hostname: os.hostname(), command, started_at: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      await writeFile(lockFile, JSON.stringify(me), { flag: 'wx' });
      let released = false;
      const release = async () => {
        if (released) return;
        released = true;
        await rm(lockFile, { force: true });
      };
      process.once('exit', () => {
        if (!released) rmSync(lockFile, { force: true });
      });
      return { release };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = JSON.parse(await readFile(lockFile, 'utf8').catch(() => '{}')) as Partial<LockHolder>;
      if (holder.pid && holder.hostname === os.hostname() && alive(holder.pid) && holder.pid !== process.pid) {
        throw new NuwaxError(ErrorCodes.E_LOCKED, `Another nuwax holds ${lockFile}: pid ${holder.pid} (${holder.command ?? '?'}) since ${holder.started_at ?? '?'}`, { details: { ...holder } });
      }
      await rm(lockFile, { force: true });
    }
  }
  throw new NuwaxError(ErrorCodes.E_LOCKED, `Cannot take ${lockFile}`);
}
