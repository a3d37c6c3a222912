import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { CLI_PATH, runCli } from '../helpers/cli.js';
import { publish, withServer } from './publish.js';

/**
 * `nuwax daemon --once` through the real CLI, the real upgrade (pre-staging: no Docker needed),
 * a real release made by `nuwax release pack|manifest`, served on 127.0.0.1.
 */
describe('nuwax daemon --once (CLI)', () => {
  test('outside the window it pre-stages the release; status shows it staged and waiting; the next run does not stage it again', () =>
    withServer(async (server, directory) => {
      const { box } = await publish(directory, server, { 'web/index.html': 'B\n' });
      const run = await runCli(['--home', box, '--json', 'daemon', '--once']);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.equal(run.json().status, 'staged');
      const status = (await runCli(['--home', box, '--json', 'status'])).json();
      assert.equal((status.staged as { version: string }).version, '1.1.0');
      assert.match(
        (status.waiting as { reason: string }).reason,
        /1\.1\.0 is staged and waits for the maintenance window/,
      );
      const history = (await runCli(['--home', box, '--json', 'history'])).json() as unknown as Array<{
        trigger: string;
        reason: string;
      }>;
      assert.equal(history[0]?.trigger, 'schedule');
      assert.match(history[0]?.reason ?? '', /outside the maintenance window/);

      const packageRequests = () => server.ranges.filter((request) => request.path === '/b.tar.gz').length;
      const before = packageRequests();
      const again = await runCli(['--home', box, '--json', 'daemon', '--once']);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.deepEqual(
        { status: again.json().status, already: again.json().already },
        { status: 'staged', already: true },
      );
      assert.equal(packageRequests(), before, 'the package was not fetched again');
      const historyAfter = (await runCli(['--home', box, '--json', 'history'])).json() as unknown as unknown[];
      assert.equal(historyAfter.length, history.length, 'no new upgrade recorded for the same release');
    }));

  test('SIGTERM during a real download stops it at once; a second nuwax meanwhile gets E_LOCKED; the restart resumes without downloading again', (context) =>
    withServer(async (server, directory) => {
      // Random bytes: the package is as big as the file, so the download takes seconds when throttled.
      const { box, size } = await publish(directory, server, { 'web/blob.bin': randomBytes(3 * 1024 * 1024) });
      server.throttle = 1024 * 1024;
      const daemon = spawn(process.execPath, [CLI_PATH, '--home', box, '--json', 'daemon', '--once'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      daemon.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      daemon.stderr.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      const exit = new Promise<number | null>((resolve) => daemon.on('exit', (code) => resolve(code)));
      const deadline = Date.now() + 30_000;
      while ((server.sent.get('/b.tar.gz') ?? 0) < 512 * 1024) {
        assert.ok(Date.now() < deadline, `the download did not start: ${output}`);
        await sleep(20);
      }
      // Slower still while the test starts a second nuwax (seconds on a busy machine): still mid-download at the SIGTERM.
      server.throttle = 32 * 1024;

      const second = await runCli(['--home', box, '--json', 'upgrade', '--yes']);
      assert.equal(second.code, 1);
      assert.match(second.stderr, new RegExp(`E_LOCKED: .*pid ${daemon.pid} \\(nuwax daemon --once\\)`));

      const signalled = Date.now();
      daemon.kill('SIGTERM');
      const code = await exit;
      const stopMs = Date.now() - signalled;
      assert.equal(code, 0, output);
      assert.ok(stopMs < 5000, `stopped ${stopMs} ms after SIGTERM`);
      const sentBefore = server.sent.get('/b.tar.gz') ?? 0;
      assert.ok(sentBefore < size, 'stopped before the end');

      server.throttle = 0;
      const resumed = await runCli(['--home', box, '--json', 'daemon', '--once']);
      assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
      assert.equal(resumed.json().status, 'staged');
      const total = server.sent.get('/b.tar.gz') ?? 0;
      context.diagnostic(
        `package ${size} B; served ${sentBefore} B before SIGTERM (stopped in ${stopMs} ms), ${total} B in all (${total - size} B over)`,
      );
      assert.ok(total <= size + 1024 * 1024, `served ${total} bytes for a ${size}-byte package`);
      const lastRange = server.ranges.filter((request) => request.path === '/b.tar.gz').at(-1)?.range;
      assert.match(lastRange ?? '', /^bytes=\d+-$/, 'the restart asked for the rest only');
    }));

  test('nuwax daemon on a seconds schedule: pre-stages at a tick, only checks at the next, exits 0 on SIGTERM with the lock released', () =>
    withServer(async (server, directory) => {
      const { box } = await publish(directory, server, { 'web/index.html': 'B\n' });
      const config = await readFile(path.join(box, 'config.toml'), 'utf8');
      await writeFile(
        path.join(box, 'config.toml'),
        config.replace('[schedule]\n', '[schedule]\ncheck = "* * * * * *"\njitter = 0\n'),
      );
      const daemon = spawn(process.execPath, [CLI_PATH, '--home', box, '--log-level', 'info', 'daemon'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      daemon.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      daemon.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exit = new Promise<number | null>((resolve) => daemon.on('exit', (code) => resolve(code)));
      const deadline = Date.now() + 30_000;
      while (!stderr.includes('"skipped":"already_staged"')) {
        assert.ok(Date.now() < deadline && daemon.exitCode === null, `no second cycle: ${stdout}${stderr}`);
        await sleep(50);
      }
      assert.match(stdout, /result: staged - /);
      assert.equal(JSON.parse(await readFile(path.join(box, 'data', 'nuwax.lock'), 'utf8')).command, 'nuwax daemon');
      const signalled = Date.now();
      daemon.kill('SIGTERM');
      assert.equal(await exit, 0, stderr);
      assert.ok(Date.now() - signalled < 5000, 'the process exits: no timer or socket keeps it alive');
      assert.match(stderr, /daemon: stopped/);
      const status = await runCli(['--home', box, '--json', 'status']);
      assert.equal((status.json().staged as { version: string }).version, '1.1.0');
      await assert.rejects(readFile(path.join(box, 'data', 'nuwax.lock')), { code: 'ENOENT' });
    }));

  // Recovery needs the lock: without it, status would mark the daemon's live upgrade 'abandoned'
  // (and mid-switch would roll it back).
  test('nuwax status while the daemon downloads leaves the live upgrade alone', () =>
    withServer(async (server, directory) => {
      const { box } = await publish(directory, server, { 'web/blob.bin': randomBytes(1024 * 1024) });
      server.throttle = 64 * 1024;
      const daemon = spawn(process.execPath, [CLI_PATH, '--home', box, 'daemon', '--once'], { stdio: 'ignore' });
      const exit = new Promise<number | null>((resolve) => daemon.on('exit', (code) => resolve(code)));
      while ((server.sent.get('/b.tar.gz') ?? 0) < 64 * 1024) await sleep(20);
      const status = await runCli(['--home', box, '--json', 'status']);
      server.throttle = 0;
      assert.equal(await exit, 0);
      assert.notEqual(
        (status.json().last_upgrade as { status: string }).status,
        'abandoned',
        "status abandoned the daemon's live upgrade",
      );
      assert.match(String(status.json().in_progress), /^pid \d+ \(nuwax daemon --once\) since /);
      const history = (await runCli(['--home', box, '--json', 'history'])).json() as unknown as Array<{
        status: string;
      }>;
      assert.equal(history[0]?.status, 'staged');
    }));
});
