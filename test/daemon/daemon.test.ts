import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseWindow } from '../../src/config/index.js';
import { acquireLock, cyclesToSkip, jitterDelayMs, planCycle } from '../../src/daemon/index.js';
import { runCli, withTempDir } from '../helpers/cli.js';
import { ReleaseServer } from '../helpers/release-server.js';
import { readFile } from 'node:fs/promises';

const at = (time: string) => new Date(`2026-11-25T${time}:00`);
const window = parseWindow('02:00-05:00');

describe('daemon (SPEC 10)', () => {
  const rows: Array<[string, Parameters<typeof planCycle>[0], 'upgrade' | 'prestage', boolean]> = [
    ['inside the window: upgrade', { now: at('03:00'), window, autoApply: true, updatesLockPresent: false }, 'upgrade', false],
    ['outside the window: pre-stage', { now: at('12:00'), window, autoApply: true, updatesLockPresent: false }, 'prestage', false],
    ['at the window end: pre-stage', { now: at('05:00'), window, autoApply: true, updatesLockPresent: false }, 'prestage', false],
    ['no window configured: upgrade', { now: at('12:00'), window: undefined, autoApply: true, updatesLockPresent: false }, 'upgrade', false],
    ['a window over midnight: inside at 23:30', { now: at('23:30'), window: parseWindow('22:00-04:00'), autoApply: true, updatesLockPresent: false }, 'upgrade', false],
    ['auto_apply false: pre-stage only', { now: at('03:00'), window, autoApply: false, updatesLockPresent: false }, 'prestage', false],
    ['the app holds updates.lock: pre-stage and wait', { now: at('03:00'), window, autoApply: true, updatesLockPresent: true }, 'prestage', true],
  ];
  for (const [name, facts, expected, waiting] of rows) {
    test(name, () => {
      const plan = planCycle(facts);
      assert.equal(plan.action, expected);
      assert.equal(plan.waitingOnLock, waiting);
    });
  }

  test('jitter is always within [0, jitter]', () => {
    for (const random of [0, 0.25, 0.999999, 1, -1, 2]) {
      const delay = jitterDelayMs(600, () => random);
      assert.ok(delay >= 0 && delay <= 600_000, String(delay));
    }
  });

  test('backoff after server failures grows and is bounded', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 10].map((failures) => cyclesToSkip(failures)), [0, 1, 3, 7, 15, 15]);
  });

  test('the lock names its holder, refuses a second holder, and a dead holder is taken over', () =>
    withTempDir('lock', async (home) => {
      const file = path.join(home, 'data', 'nuwax.lock');
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, JSON.stringify({ pid: 1, hostname: (await import('node:os')).hostname(), command: 'nuwax daemon', started_at: 'earlier' }));
      await assert.rejects(acquireLock(file, 'nuwax upgrade'), (error: { code: string; message: string }) => error.code === 'E_LOCKED' && /pid 1 \(nuwax daemon\)/.test(error.message));
      await writeFile(file, JSON.stringify({ pid: 2 ** 22 + 12345, hostname: (await import('node:os')).hostname(), command: 'crashed', started_at: 'earlier' }));
      const lock = await acquireLock(file, 'nuwax upgrade');
      assert.equal(JSON.parse(await readFile(file, 'utf8')).pid, process.pid);
      await lock.release();
      const again = await acquireLock(file, 'nuwax daemon');
      await again.release();
    }));

  test('daemon --once outside the window pre-stages the release and status shows it', () =>
    withTempDir('daemon', async (home) => {
      const server = await new ReleaseServer().start();
      try {
        const app = path.join(home, 'release');
        await mkdir(path.join(app, 'web'), { recursive: true });
        await writeFile(path.join(app, 'web', 'index.html'), 'B\n');
        const pack = await runCli(['release', 'pack', app, '--version', '1.1.0', '-o', path.join(home, 'b.tar.gz')]);
        assert.equal(pack.code, 0, pack.stderr);
        const manifest = await runCli(['release', 'manifest', '--version', '1.1.0', '-o', path.join(home, 'manifest.json'), path.join(home, 'b.tar.gz')]);
        assert.equal(manifest.code, 0, manifest.stderr);
        server.set('/manifest.json', await readFile(path.join(home, 'manifest.json')));
        server.set('/b.tar.gz', await readFile(path.join(home, 'b.tar.gz')));
        const box = path.join(home, 'box');
        await mkdir(path.join(box, 'docker'), { recursive: true });
        await writeFile(path.join(box, 'docker', 'docker-compose.yml'), 'services: {}\n');
        const now = new Date();
        const start = (now.getHours() + 12) % 24;
        await writeFile(path.join(box, 'config.toml'), `[versions]\ndocker_service = "1.0.0"\n[server]\nmanifest_url = "${server.url}/manifest.json"\n[schedule]\nwindow = "${String(start).padStart(2, '0')}:00-${String((start + 1) % 24).padStart(2, '0')}:00"\n`);
        const run = await runCli(['--home', box, '--json', 'daemon', '--once']);
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.equal(run.json().status, 'staged');
        const status = await runCli(['--home', box, '--json', 'status']);
        assert.equal((status.json().staged as { version: string }).version, '1.1.0');
        const history = await runCli(['--home', box, '--json', 'history']);
        const [last] = history.json() as unknown as Array<{ trigger: string; reason: string }>;
        assert.equal(last?.trigger, 'schedule');
        assert.match(last?.reason ?? '', /outside the maintenance window/);
      } finally {
        await server.stop();
      }
    }));
});
