import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { acquireLock, readLockHolder } from '../../src/daemon/index.js';
import { startTicks } from '../../src/daemon/lock.js';
import { exists } from '../../src/fsutil/index.js';
import { withTempDir } from '../helpers/cli.js';

const CHILD = fileURLToPath(new URL('./lock-child.js', import.meta.url));

interface ChildAnswer {
  ok: boolean;
  pid?: number;
  code?: string;
  message?: string;
}

/** Starts lock-child.js and resolves with its first line (and the process, still running when holding). */
function child(file: string, command: string, mode?: 'hold'): Promise<{ answer: ChildAnswer; process: ChildProcess }> {
  const processHandle = spawn(process.execPath, [CHILD, file, command, ...(mode ? [mode] : [])], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    processHandle.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n')[0];
      if (output.includes('\n') && line) resolve({ answer: JSON.parse(line) as ChildAnswer, process: processHandle });
    });
    processHandle.on('error', reject);
  });
}

function exited(processHandle: ChildProcess): Promise<void> {
  return processHandle.exitCode !== null || processHandle.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => processHandle.once('exit', () => resolve()));
}

const holderFile = (pid: number, startedAt: string, command = 'nuwax daemon') =>
  JSON.stringify({ pid, hostname: os.hostname(), command, started_at: startedAt });

describe('one nuwax per home: the lock file (SPEC 10)', () => {
  test("the lock names its holder and a second process gets E_LOCKED with the holder's pid, command and start", () =>
    withTempDir('lock', async (home) => {
      const file = path.join(home, 'data', 'nuwax.lock');
      const lock = await acquireLock(file, 'nuwax daemon');
      const written = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      const linux = existsSync('/proc/sys/kernel/random/boot_id');
      assert.deepEqual(
        Object.keys(written).sort(),
        ['command', 'hostname', 'pid', 'started_at', ...(linux ? ['boot_id', 'pid_ns', 'start_ticks'] : [])].sort(),
      );
      assert.equal(written.pid, process.pid);
      assert.equal(written.command, 'nuwax daemon');
      const second = await child(file, 'nuwax upgrade');
      await exited(second.process);
      assert.equal(second.answer.ok, false);
      assert.equal(second.answer.code, 'E_LOCKED');
      assert.match(
        second.answer.message ?? '',
        new RegExp(`pid ${process.pid} \\(nuwax daemon\\) since ${String(written.started_at).replace(/[.]/g, '\\.')}`),
      );
      assert.equal(
        JSON.parse(await readFile(file, 'utf8')).pid,
        process.pid,
        'the refused process left the lock alone',
      );
      await lock.release();
      assert.equal(await exists(file), false, 'released: the file is gone');
      await lock.release();
    }));

  test('a lock held by a live process refuses us; once that process is killed -9 the stale lock is taken over', () =>
    withTempDir('lock', async (home) => {
      const file = path.join(home, 'data', 'nuwax.lock');
      const holder = await child(file, 'nuwax upgrade', 'hold');
      assert.equal(holder.answer.ok, true);
      await assert.rejects(
        acquireLock(file, 'nuwax daemon'),
        (error: { code: string; message: string; details: { pid: number } }) => {
          assert.equal(error.code, 'E_LOCKED');
          assert.equal(error.details.pid, holder.answer.pid);
          assert.match(error.message, /\(nuwax upgrade\)/);
          return true;
        },
      );
      holder.process.kill('SIGKILL');
      await exited(holder.process);
      assert.equal(
        JSON.parse(await readFile(file, 'utf8')).pid,
        holder.answer.pid,
        'kill -9 leaves the lock file behind',
      );
      const lock = await acquireLock(file, 'nuwax daemon');
      assert.equal(JSON.parse(await readFile(file, 'utf8')).pid, process.pid);
      await lock.release();
    }));

  test('a holder that releases lets the next one in', () =>
    withTempDir('lock', async (home) => {
      const file = path.join(home, 'data', 'nuwax.lock');
      const holder = await child(file, 'nuwax upgrade', 'hold');
      holder.process.stdin!.end();
      await exited(holder.process);
      assert.equal(await exists(file), false);
      const lock = await acquireLock(file, 'nuwax daemon');
      await lock.release();
    }));

  test('four processes racing for a free lock: exactly one gets it', () =>
    withTempDir('lock', async (home) => {
      const file = path.join(home, 'data', 'nuwax.lock');
      const racers = await Promise.all(Array.from({ length: 4 }, () => child(file, 'racer', 'hold')));
      const winners = racers.filter((racer) => racer.answer.ok);
      assert.equal(winners.length, 1, JSON.stringify(racers.map((racer) => racer.answer)));
      assert.ok(racers.filter((racer) => !racer.answer.ok).every((racer) => racer.answer.code === 'E_LOCKED'));
      for (const racer of racers) racer.process.stdin!.end();
      await Promise.all(racers.map((racer) => exited(racer.process)));
      assert.equal(await exists(file), false);
    }));

  test('a dead pid is stale: taken over', () =>
    withTempDir('lock', async (home) => {
      const file = path.join(home, 'data', 'nuwax.lock');
      await mkdir(path.dirname(file), { recursive: true });
      const dead = spawn(process.execPath, ['-e', '0']);
      await exited(dead);
      await writeFile(file, holderFile(dead.pid!, new Date().toISOString(), 'crashed'));
      assert.equal(await readLockHolder(file), null);
      const lock = await acquireLock(file, 'nuwax upgrade');
      assert.equal(JSON.parse(await readFile(file, 'utf8')).command, 'nuwax upgrade');
      await lock.release();
    }));

  const noBootId = existsSync('/proc/sys/kernel/random/boot_id')
    ? false
    : 'needs Linux /proc (boot id and process start ticks)';

  test(
    'on Linux a holder is known by boot id, pid and start ticks: a clock stepped by NTP or a renamed box never frees a live lock',
    { skip: noBootId },
    () =>
      withTempDir('lock', async (home) => {
        const file = path.join(home, 'data', 'nuwax.lock');
        await mkdir(path.dirname(file), { recursive: true });
        const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
        const holder = await child(file, 'nuwax daemon', 'hold');
        const pid = holder.answer.pid!;
        const written = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
        assert.equal(written.boot_id, bootId);
        assert.equal(written.start_ticks, startTicks(pid));
        // The box booted with its clock hours behind, then NTP stepped it forward: the recorded start
        // now lies before the boot. And the box was renamed since. The holder is still the same process.
        const skewed = {
          ...written,
          started_at: new Date(Date.now() - os.uptime() * 1000 - 6 * 3_600_000).toISOString(),
          hostname: 'renamed-box',
        };
        await writeFile(file, JSON.stringify(skewed));
        await assert.rejects(acquireLock(file, 'nuwax upgrade'), { code: 'E_LOCKED' });
        assert.equal((await readLockHolder(file))?.pid, pid);
        holder.process.kill('SIGKILL');
        await exited(holder.process);
        assert.equal(await readLockHolder(file), null, 'once the holder is gone, the lock is stale');
      }),
  );

  test(
    'on Linux a live pid from another boot, or one now running another process (other start ticks), is stale',
    { skip: noBootId },
    () =>
      withTempDir('lock', async (home) => {
        const file = path.join(home, 'data', 'nuwax.lock');
        await mkdir(path.dirname(file), { recursive: true });
        const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
        const now = new Date().toISOString();
        const pid1 = {
          pid: 1,
          hostname: os.hostname(),
          command: 'nuwax daemon',
          started_at: now,
          boot_id: bootId,
          start_ticks: startTicks(1),
        };
        await writeFile(file, JSON.stringify(pid1));
        assert.equal(
          (await readLockHolder(file))?.pid,
          1,
          'pid 1 with its own start ticks in this boot: a live holder',
        );
        await writeFile(file, JSON.stringify({ ...pid1, boot_id: '00000000-0000-0000-0000-000000000000' }));
        assert.equal(await readLockHolder(file), null, 'written in another boot');
        await writeFile(file, JSON.stringify({ ...pid1, start_ticks: (pid1.start_ticks ?? 0) + 1 }));
        assert.equal(await readLockHolder(file), null, 'the pid now belongs to a process started at another time');
        const lock = await acquireLock(file, 'nuwax upgrade');
        await lock.release();
      }),
  );

  test(
    'on Linux a holder in another pid namespace (a daemon in a container, the home bind-mounted) is never judged by its pid here',
    { skip: noBootId },
    () =>
      withTempDir('lock', async (home) => {
        const file = path.join(home, 'data', 'nuwax.lock');
        await mkdir(path.dirname(file), { recursive: true });
        const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
        // pid 1 of a container: here pid 1 is another process, with other start ticks, and a dead pid would look stale.
        for (const pid of [1, 999_999]) {
          const container = {
            pid,
            hostname: os.hostname(),
            command: 'nuwax daemon',
            started_at: new Date().toISOString(),
            boot_id: bootId,
            start_ticks: 12345,
            pid_ns: 'pid:[1]',
          };
          await writeFile(file, JSON.stringify(container));
          assert.equal((await readLockHolder(file))?.pid, pid, 'held');
          await assert.rejects(
            acquireLock(file, 'nuwax upgrade'),
            (error: { code: string; message: string }) =>
              error.code === 'E_LOCKED' && /another pid namespace.*if it is gone remove the lock/.test(error.message),
          );
          await writeFile(file, JSON.stringify({ ...container, boot_id: '00000000-0000-0000-0000-000000000000' }));
          assert.equal(
            await readLockHolder(file),
            null,
            'but a lock from before the last boot is stale wherever it was taken',
          );
        }
      }),
  );

  test('a live pid recorded before the last boot is a reused pid: taken over (a lock written without a boot id)', () =>
    withTempDir('lock', async (home) => {
      const file = path.join(home, 'data', 'nuwax.lock');
      await mkdir(path.dirname(file), { recursive: true });
      // pid 1 is alive, but this holder started long before the machine booted.
      await writeFile(file, holderFile(1, new Date(Date.now() - os.uptime() * 1000 - 3_600_000).toISOString()));
      const lock = await acquireLock(file, 'nuwax upgrade');
      await lock.release();
      // The same live pid 1, started after the boot: a real holder.
      await writeFile(file, holderFile(1, new Date().toISOString()));
      await assert.rejects(acquireLock(file, 'nuwax upgrade'), /pid 1 \(nuwax daemon\)/);
      assert.deepEqual((await readLockHolder(file))?.pid, 1);
    }));

  test('our own pid in a lock this process does not hold (pid 1 in a restarted container) is stale', () =>
    withTempDir('lock', async (home) => {
      const file = path.join(home, 'data', 'nuwax.lock');
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, holderFile(process.pid, new Date().toISOString(), 'previous life'));
      const lock = await acquireLock(file, 'nuwax daemon');
      // But the same process asking twice is refused: two cycles must never overlap.
      await assert.rejects(acquireLock(file, 'nuwax upgrade'), { code: 'E_LOCKED' });
      await lock.release();
    }));

  test('a lock file being written (empty, seconds old) is respected; an old empty one is taken over', () =>
    withTempDir('lock', async (home) => {
      const file = path.join(home, 'data', 'nuwax.lock');
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, '');
      await assert.rejects(acquireLock(file, 'nuwax upgrade'), { code: 'E_LOCKED' });
      const old = new Date(Date.now() - 60_000);
      await utimes(file, old, old);
      const lock = await acquireLock(file, 'nuwax upgrade');
      await lock.release();
    }));

  test('release does not remove a lock that is no longer ours', () =>
    withTempDir('lock', async (home) => {
      const file = path.join(home, 'data', 'nuwax.lock');
      const lock = await acquireLock(file, 'nuwax daemon');
      await writeFile(file, holderFile(1, new Date().toISOString(), 'someone else'));
      await lock.release();
      assert.equal(JSON.parse(await readFile(file, 'utf8')).command, 'someone else');
    }));
});
