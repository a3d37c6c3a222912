import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { CLI_PATH, runCli } from '../helpers/cli.js';
import { publish, withServer } from './publish.js';

/**
 * `nuwax daemon` through the real CLI: the waiting parent and the child processes that do the
 * work (a real release on 127.0.0.1, pre-staged outside the window: no Docker needed).
 */

interface Daemon {
  process: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** The log records on stderr so far. */
  records(): Array<Record<string, unknown>>;
  exit: Promise<number | null>;
}

async function startDaemon(box: string): Promise<Daemon> {
  const config = await readFile(path.join(box, 'config.toml'), 'utf8');
  await writeFile(
    path.join(box, 'config.toml'),
    config.replace('[schedule]\n', '[schedule]\ncheck = "* * * * * *"\njitter = 0\n'),
  );
  const child = spawn(process.execPath, [CLI_PATH, '--home', box, '--log-level', 'debug', 'daemon'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return {
    process: child,
    pid: child.pid!,
    stdout: () => stdout,
    stderr: () => stderr,
    records: () =>
      stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    exit: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
}

async function until(check: () => boolean, what: () => string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    assert.ok(Date.now() < deadline, `timed out: ${what()}`);
    await sleep(25);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** The pid of the first child in `role` the daemon logged (at --log-level debug). */
function childPid(daemon: Daemon, role: string): number | undefined {
  const record = daemon.records().find((entry) => entry.msg === 'daemon: child process started' && entry.role === role);
  return record?.pid as number | undefined;
}

describe('nuwax daemon: a waiting parent, the work in child processes that exit', () => {
  test('a cycle runs in a child process that exits; the parent holds the lock and never loads the store', () =>
    withServer(async (server, directory) => {
      const { box } = await publish(directory, server, { 'web/blob.bin': randomBytes(512 * 1024) });
      server.throttle = 128 * 1024;
      const daemon = await startDaemon(box);
      await until(
        () => childPid(daemon, 'cycle') !== undefined && (server.sent.get('/b.tar.gz') ?? 0) > 64 * 1024,
        () => daemon.stderr(),
      );
      const cyclePid = childPid(daemon, 'cycle')!;
      assert.notEqual(cyclePid, daemon.pid);
      // While the child downloads, the lock names the daemon, and a `nuwax upgrade` by hand is refused.
      const lock = JSON.parse(await readFile(path.join(box, 'data', 'nuwax.lock'), 'utf8'));
      assert.deepEqual({ pid: lock.pid, command: lock.command }, { pid: daemon.pid, command: 'nuwax daemon' });
      const second = await runCli(['--home', box, '--json', 'upgrade', '--yes']);
      assert.equal(second.code, 1);
      assert.match(second.stderr, new RegExp(`E_LOCKED: .*pid ${daemon.pid} \\(nuwax daemon\\)`));

      server.throttle = 0;
      await until(
        () => daemon.records().some((entry) => entry.msg === 'daemon: child process exited' && entry.pid === cyclePid),
        () => daemon.stderr(),
      );
      assert.match(daemon.stdout(), /result: staged - /);
      assert.equal(alive(cyclePid), false, 'the cycle child is gone');
      const exited = daemon
        .records()
        .find((entry) => entry.msg === 'daemon: child process exited' && entry.pid === cyclePid);
      assert.equal(exited?.exitCode, 0);
      // The parent waits with neither SQLite nor the upgrade machinery loaded.
      const maps = await readFile(`/proc/${daemon.pid}/maps`, 'utf8');
      assert.doesNotMatch(maps, /better_sqlite3\.node/);
      const history = (await runCli(['--home', box, '--json', 'history'])).json() as unknown as Array<{
        status: string;
        started_by: string;
      }>;
      assert.equal(history[0]?.status, 'staged');
      assert.match(history[0]?.started_by ?? '', new RegExp(`^nuwax daemon \\(pid ${daemon.pid}\\)`));

      daemon.process.kill('SIGTERM');
      assert.equal(await daemon.exit, 0, daemon.stderr());
      await assert.rejects(readFile(path.join(box, 'data', 'nuwax.lock')), { code: 'ENOENT' });
    }));

  test('SIGTERM during a cycle reaches its child: the download stops, both exit, exit code 0, lock released', () =>
    withServer(async (server, directory) => {
      const { box, size } = await publish(directory, server, { 'web/blob.bin': randomBytes(3 * 1024 * 1024) });
      server.throttle = 256 * 1024;
      const daemon = await startDaemon(box);
      await until(
        () => childPid(daemon, 'cycle') !== undefined && (server.sent.get('/b.tar.gz') ?? 0) > 256 * 1024,
        () => daemon.stderr(),
      );
      const cyclePid = childPid(daemon, 'cycle')!;
      const signalled = Date.now();
      daemon.process.kill('SIGTERM');
      assert.equal(await daemon.exit, 0, daemon.stderr());
      assert.ok(Date.now() - signalled < 5000, `stopped ${Date.now() - signalled} ms after SIGTERM`);
      assert.equal(alive(cyclePid), false, 'the cycle child is gone');
      assert.ok((server.sent.get('/b.tar.gz') ?? 0) < size, 'stopped before the end of the download');
      const messages = daemon.records().map((entry) => entry.msg);
      assert.ok(messages.includes('daemon: stopping; the download stops now and resumes at the next run'));
      assert.equal(messages.at(-1), 'daemon: stopped');
      await assert.rejects(readFile(path.join(box, 'data', 'nuwax.lock')), { code: 'ENOENT' });
    }));

  test('kill -9 of a cycle child mid-download: the daemon goes on, and the next cycle recovers and resumes', () =>
    withServer(async (server, directory) => {
      const { box, size } = await publish(directory, server, { 'web/blob.bin': randomBytes(2 * 1024 * 1024) });
      server.throttle = 256 * 1024;
      const daemon = await startDaemon(box);
      await until(
        () => childPid(daemon, 'cycle') !== undefined && (server.sent.get('/b.tar.gz') ?? 0) > 512 * 1024,
        () => daemon.stderr(),
      );
      const killed = childPid(daemon, 'cycle')!;
      process.kill(killed, 'SIGKILL');
      server.throttle = 0;
      await until(
        () => /result: staged - /.test(daemon.stdout()),
        () => daemon.stdout() + daemon.stderr(),
      );
      const records = daemon.records();
      assert.ok(
        records.some((entry) => entry.msg === 'daemon: cycle crashed; the next one runs on schedule'),
        'the parent said the cycle died',
      );
      assert.ok(records.some((entry) => entry.msg === 'recovering an interrupted upgrade'));
      const history = (await runCli(['--home', box, '--json', 'history'])).json() as unknown as Array<{
        status: string;
      }>;
      assert.deepEqual(
        history.slice(0, 2).map((row) => row.status),
        ['staged', 'abandoned'],
      );
      const total = server.sent.get('/b.tar.gz') ?? 0;
      assert.ok(total < 2 * size, `served ${total} bytes for a ${size}-byte package: the download resumed`);
      daemon.process.kill('SIGTERM');
      assert.equal(await daemon.exit, 0, daemon.stderr());
    }));
});
