import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { acquireLock, type DaemonOptions, startDaemon } from '../../src/daemon/index.js';
import { exists } from '../../src/fsutil/index.js';
import { fakeUpgrade, type Home, logger, results, slowDownload, slowSwitch, until, withHome } from './harness.js';

const EVERY_SECOND = '[schedule]\ncheck = "* * * * * *"\njitter = 0\n';

function options(
  home: Home,
  toml: string,
  ports: DaemonOptions['ports'],
  extra: Partial<DaemonOptions> = {},
): DaemonOptions {
  return {
    config: home.config(toml),
    home: home.home,
    store: home.store,
    logger,
    ports,
    lockFile: home.lockFile,
    jitter: false,
    signals: new EventEmitter(),
    ...extra,
  };
}

describe('nuwax daemon (SPEC 10)', () => {
  test("--once runs one cycle, holds the lock meanwhile, releases it, and exits with the cycle's code", () =>
    withHome(async (home) => {
      let lockDuringCycle: { pid?: number; command?: string } = {};
      const answers = [
        results.success(),
        results.failed('E_NETWORK'),
        { ...results.success(), status: 'partial_success' } as never,
      ];
      const fake = fakeUpgrade(async (_request, call) => {
        lockDuringCycle = JSON.parse(await readFile(home.lockFile, 'utf8'));
        return answers[call - 1]!;
      });
      const codes: number[] = [];
      for (let run = 0; run < 3; run += 1)
        codes.push(await startDaemon(options(home, '', fake.ports, { once: true })).done);
      assert.deepEqual(codes, [0, 1, 3]);
      assert.equal(lockDuringCycle.pid, process.pid);
      assert.equal(lockDuringCycle.command, 'nuwax daemon --once');
      assert.equal(await exists(home.lockFile), false);
    }));

  test('a second daemon on the same home gets E_LOCKED naming the first', () =>
    withHome(async (home) => {
      const first = await acquireLock(home.lockFile, 'nuwax daemon');
      const fake = fakeUpgrade(() => results.upToDate());
      await assert.rejects(
        startDaemon(options(home, EVERY_SECOND, fake.ports)).done,
        (error: { code: string; message: string }) =>
          error.code === 'E_LOCKED' && error.message.includes(`pid ${process.pid} (nuwax daemon)`),
      );
      assert.equal(fake.calls.length, 0);
      await first.release();
    }));

  test('SIGTERM during a slow download aborts it at once, then the lock is released and the exit code is 0', () =>
    withHome(async (home) => {
      const fake = fakeUpgrade(slowDownload);
      const signals = new EventEmitter();
      const daemon = startDaemon(options(home, EVERY_SECOND, fake.ports, { signals }));
      await until(() => fake.calls.length === 1, 4000);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const stoppedAt = Date.now();
      signals.emit('SIGTERM', 'SIGTERM');
      assert.equal(await daemon.done, 0);
      assert.ok(Date.now() - stoppedAt < 1000, `stopped in ${Date.now() - stoppedAt} ms`);
      assert.equal(fake.calls[0]?.signal.aborted, true);
      assert.equal(await exists(home.lockFile), false);
      assert.equal(signals.listenerCount('SIGTERM'), 0, 'signal handlers removed');
    }));

  test('SIGTERM during the switch lets it finish (its signal is never aborted), then exits 0', () =>
    withHome(async (home) => {
      const seen: { abortedDuringSwitch?: boolean; finished?: boolean } = {};
      const switchStarted: boolean[] = [];
      const fake = fakeUpgrade(slowSwitch(400, seen));
      const signals = new EventEmitter();
      const daemon = startDaemon(
        options(home, EVERY_SECOND, fake.ports, {
          signals,
          onEvent: (event) => event.type === 'step' && event.step === 'backing_up' && switchStarted.push(true),
        }),
      );
      await until(() => switchStarted.length === 1, 4000);
      signals.emit('SIGTERM', 'SIGTERM');
      signals.emit('SIGINT', 'SIGINT');
      assert.equal(await daemon.done, 0);
      assert.equal(seen.finished, true, 'the switch ran to its end before the exit');
      assert.equal(seen.abortedDuringSwitch, false);
      assert.equal(fake.calls.length, 1, 'no new cycle after the stop');
      assert.equal(await exists(home.lockFile), false);
    }));

  test('a seconds-level cron runs cycles within a couple of seconds (real timers)', () =>
    withHome(async (home) => {
      const fake = fakeUpgrade(() => results.upToDate());
      const daemon = startDaemon(options(home, EVERY_SECOND, fake.ports));
      const started = Date.now();
      await until(() => fake.calls.length >= 2, 3500);
      assert.ok(Date.now() - started < 3500);
      daemon.stop('SIGTERM');
      assert.equal(await daemon.done, 0);
      assert.equal(home.store.kv.get<{ status: string }>('daemon:last_cycle')?.status, 'up_to_date');
    }));

  test('SIGTERM while waiting the jitter stops at once without starting the upgrade', () =>
    withHome(async (home) => {
      const fake = fakeUpgrade(() => results.upToDate());
      const signals = new EventEmitter();
      let waiting = false;
      const daemon = startDaemon(
        options(home, '[schedule]\ncheck = "* * * * * *"\njitter = "10m"\n', fake.ports, {
          signals,
          jitter: true,
          random: () => 0.9,
          sleep: (ms, signal) => {
            waiting = true;
            return new Promise((_resolve, reject) => {
              const timer = setTimeout(_resolve, ms);
              signal.addEventListener('abort', () => {
                clearTimeout(timer);
                reject(new Error('aborted'));
              });
            });
          },
        }),
      );
      await until(() => waiting, 4000);
      signals.emit('SIGTERM', 'SIGTERM');
      assert.equal(await daemon.done, 0);
      assert.equal(fake.calls.length, 0);
    }));

  test('an interrupted upgrade is recovered at start, before any cycle, and a SIGTERM then does not abort it', () =>
    withHome(async (home) => {
      const order: string[] = [];
      const signals = new EventEmitter();
      const fake = fakeUpgrade(
        () => {
          order.push('cycle');
          return results.upToDate();
        },
        {
          recover: async () => {
            order.push('recover');
            signals.emit('SIGTERM', 'SIGTERM');
            await new Promise((resolve) => setTimeout(resolve, 100));
            order.push('recovered');
          },
        },
      );
      const code = await startDaemon(options(home, EVERY_SECOND, fake.ports, { signals })).done;
      assert.equal(code, 0);
      assert.deepEqual(order, ['recover', 'recovered'], 'stopped after the recovery, no cycle');
    }));

  test('an invalid [schedule] check is a config error and takes no lock', () =>
    withHome(async (home) => {
      const fake = fakeUpgrade(() => results.upToDate());
      await assert.rejects(
        startDaemon(options(home, '[schedule]\ncheck = "every day"\n', fake.ports)).done,
        (error: { code: string; message: string }) =>
          error.code === 'E_CONFIG' && /schedule\.check/.test(error.message),
      );
      assert.equal(await exists(home.lockFile), false);
    }));

  test('a cycle that throws is logged and the daemon keeps its schedule', () =>
    withHome(async (home) => {
      const fake = fakeUpgrade((_request, call) => {
        if (call === 1) throw new Error('bug in a collaborator');
        return results.upToDate();
      });
      const daemon = startDaemon(options(home, EVERY_SECOND, fake.ports));
      await until(() => fake.calls.length >= 2, 4000);
      daemon.stop();
      assert.equal(await daemon.done, 0);
    }));
});
