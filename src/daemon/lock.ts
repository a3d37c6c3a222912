import { mkdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { errnoOf, whenAbsent } from '../fsutil/index.js';

/** What the lock file holds: enough for an operator to find the other process. */
export interface LockHolder {
  pid: number;
  hostname: string;
  command: string;
  started_at: string;
  /** Linux: the kernel's boot id, so a lock from before a reboot is known without trusting the clock. */
  boot_id?: string;
  /** Linux: the holder's start time in clock ticks after boot (/proc/PID/stat), so a reused pid is known. */
  start_ticks?: number;
  /** Linux: the holder's pid namespace (/proc/self/ns/pid): its pid and ticks mean something only there. */
  pid_ns?: string;
}

export interface HeldLock {
  holder: LockHolder;
  /** Removes the lock file if it is still ours; safe to call twice. */
  release(): Promise<void>;
}

/** A lock file without a readable holder is one being written right now, for this long. */
const WRITING_GRACE_MS = 10_000;

/** Lock files this process holds: the same pid in a file we do not hold is a reused pid. */
const heldHere = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else. ESRCH: it is gone.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch (error) {
    // Not Linux (or no /proc): the holder is judged by its host name and the clock instead.
    if (errnoOf(error) === 'ENOENT') return null;
    throw error;
  }
}

function readPidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch (error) {
    // No /proc (not Linux), or a sandbox that hides namespaces: the holder is judged without it.
    const code = errnoOf(error);
    if (code === 'ENOENT' || code === 'EACCES') return null;
    throw error;
  }
}

/** A holder in another pid namespace (a container, or the host seen from one): its pid cannot be checked from here. */
function inOtherNamespace(holder: LockHolder): boolean {
  const here = readPidNamespace();
  return holder.pid_ns !== undefined && here !== null && holder.pid_ns !== here;
}

/** Field 22 of /proc/PID/stat; the command name (field 2) may hold spaces and parentheses: count from the last ). */
export function startTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    return Number.isSafeInteger(ticks) ? ticks : null;
  } catch (error) {
    // The process is gone (ESRCH when it exits during the read), or there is no /proc (not Linux).
    const code = errnoOf(error);
    if (code === 'ENOENT' || code === 'ESRCH') return null;
    throw error;
  }
}

function parseHolder(raw: string): LockHolder | null {
  try {
    const value = JSON.parse(raw) as Partial<LockHolder>;
    if (typeof value.pid !== 'number' || !Number.isInteger(value.pid) || value.pid <= 0) return null;
    return {
      pid: value.pid,
      hostname: String(value.hostname ?? ''),
      command: String(value.command ?? '?'),
      started_at: String(value.started_at ?? '?'),
      boot_id: typeof value.boot_id === 'string' ? value.boot_id : undefined,
      start_ticks: typeof value.start_ticks === 'number' ? value.start_ticks : undefined,
      pid_ns: typeof value.pid_ns === 'string' ? value.pid_ns : undefined,
    };
  } catch (error) {
    // Not JSON: a holder still writing it, or garbage; the caller decides by the file's age.
    if (error instanceof SyntaxError) return null;
    throw error;
  }
}

/**
 * Whether the holder in a lock file is gone. A crash or kill -9 leaves the file behind (SPEC 9),
 * so it must never be held forever: a dead pid, a pid from before the last boot (pids are reused
 * after a reboot, and a boot-time service gets similar ones), a live pid that is another process
 * now, or our own pid when this process does not hold it (pid 1 in a restarted container).
 *
 * On Linux a process is known by (boot id, pid, start ticks): none of them moves when NTP steps
 * the clock of a box that booted without a battery-backed clock, or when the box is renamed, so a
 * live daemon's lock is never taken over for either. Elsewhere, and for a lock written without
 * them, the host name and the wall clock stand in.
 */
export function isStaleHolder(holder: LockHolder, lockFile: string, now: Date = new Date()): boolean {
  const bootId = readBootId();
  if (holder.boot_id !== undefined && bootId !== null) {
    if (holder.boot_id !== bootId) return true;
    // Its pid may be any process here: held until the next boot, or until an operator removes it.
    if (inOtherNamespace(holder)) return false;
    if (holder.pid === process.pid && !heldHere.has(path.resolve(lockFile))) return true;
    if (!alive(holder.pid)) return true;
    const ticks = holder.start_ticks === undefined ? null : startTicks(holder.pid);
    return ticks !== null && ticks !== holder.start_ticks;
  }
  if (holder.hostname !== os.hostname()) return true;
  if (holder.pid === process.pid) return !heldHere.has(path.resolve(lockFile));
  const started = Date.parse(holder.started_at);
  const bootedAt = now.getTime() - os.uptime() * 1000;
  if (Number.isFinite(started) && started < bootedAt - 60_000) return true;
  return !alive(holder.pid);
}

/** The live holder of a lock, or null when the file is absent or its holder is gone. */
export async function readLockHolder(lockFile: string): Promise<LockHolder | null> {
  const raw = await readFile(lockFile, 'utf8').catch(whenAbsent(null));
  if (raw === null) return null;
  const holder = parseHolder(raw);
  return holder && !isStaleHolder(holder, lockFile) ? holder : null;
}

function lockedError(lockFile: string, holder: LockHolder): NuwaxError {
  return new NuwaxError(
    ErrorCodes.E_LOCKED,
    inOtherNamespace(holder)
      ? `Another nuwax is working on this home from another pid namespace (a container, or the host)` +
          `: pid ${holder.pid} there (${holder.command}) since ${holder.started_at}` +
          `; stop it, or if it is gone remove the lock ${lockFile}`
      : `Another nuwax is working on this home: pid ${holder.pid} (${holder.command}) since ${holder.started_at}` +
          `; wait for it or stop it (the daemon: systemctl stop nuwax), lock ${lockFile}`,
    { details: { lockFile, ...holder } },
  );
}

/**
 * One process per home (SPEC 10): an O_EXCL lock file naming its holder. A second `nuwax upgrade`
 * or daemon gets E_LOCKED naming the holder; a stale lock is taken over. Released on release() or,
 * failing that, when the process exits.
 */
export async function acquireLock(lockFile: string, command: string): Promise<HeldLock> {
  const file = path.resolve(lockFile);
  mkdirSync(path.dirname(file), { recursive: true });
  const bootId = readBootId();
  const ticks = startTicks(process.pid);
  const pidNamespace = readPidNamespace();
  const holder: LockHolder = {
    pid: process.pid,
    hostname: os.hostname(),
    command,
    started_at: new Date().toISOString(),
    boot_id: bootId ?? undefined,
    start_ticks: ticks ?? undefined,
    pid_ns: pidNamespace ?? undefined,
  };
  const content = JSON.stringify(holder);
  for (let attempt = 0; attempt < 5; attempt += 1) {
    try {
      await writeFile(file, content, { flag: 'wx', mode: 0o644 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      await removeIfStale(file);
      continue;
    }
    heldHere.add(file);
    return { holder, release: releaser(file, content) };
  }
  throw new NuwaxError(ErrorCodes.E_LOCKED, `Cannot take the lock ${file}: it keeps changing hands`, {
    details: { lockFile: file },
  });
}

/** Throws E_LOCKED for a live holder; removes a stale file (only if it did not change meanwhile). */
async function removeIfStale(file: string): Promise<void> {
  const raw = await readFile(file, 'utf8').catch(whenAbsent(null));
  if (raw === null) return;
  const holder = parseHolder(raw);
  if (holder && !isStaleHolder(holder, file)) throw lockedError(file, holder);
  if (!holder) {
    const age = Date.now() - (await stat(file)).mtimeMs;
    if (age < WRITING_GRACE_MS)
      throw lockedError(file, {
        pid: 0,
        hostname: '?',
        command: '(being written)',
        started_at: new Date(Date.now() - age).toISOString(),
      });
  }
  // Two takers of one stale lock: the second must not delete the first one's fresh lock.
  if ((await readFile(file, 'utf8').catch(whenAbsent(null))) === raw) await rm(file, { force: true });
}

function releaser(file: string, content: string): () => Promise<void> {
  let released = false;
  const ours = () => {
    try {
      return readFileSync(file, 'utf8') === content;
    } catch (error) {
      // Gone already (someone removed it by hand): nothing to release.
      if (errnoOf(error) === 'ENOENT') return false;
      throw error;
    }
  };
  const onExit = () => {
    if (!released && ours()) rmSync(file, { force: true });
  };
  process.once('exit', onExit);
  return async () => {
    if (released) return;
    released = true;
    process.off('exit', onExit);
    heldHere.delete(file);
    if (ours()) await rm(file, { force: true });
  };
}
