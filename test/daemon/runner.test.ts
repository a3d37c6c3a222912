import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CycleRunner, type CycleRunnerOptions, type WaitingRecord } from '../../src/daemon/index.js';
import { fakeUpgrade, type Home, logger, results, withHome } from './harness.js';

/** A clock the test moves by hand. */
function clock(time: string) {
  let now = new Date(`2026-11-25T${time}:00`);
  return { now: () => now, set: (next: string) => (now = new Date(`2026-11-25T${next}:00`)) };
}

function runner(
  home: Home,
  toml: string,
  ports: CycleRunnerOptions['ports'],
  extra: Partial<CycleRunnerOptions> = {},
): CycleRunner {
  return new CycleRunner({
    config: home.config(toml),
    home: home.home,
    store: home.store,
    logger,
    ports,
    jitter: false,
    ...extra,
  });
}

const WINDOW = '[schedule]\nwindow = "02:00-05:00"\n';

describe('a daemon cycle (SPEC 10)', () => {
  test('inside the window it upgrades; outside it only pre-stages (fake clock)', () =>
    withHome(async (home) => {
      const time = clock('03:00');
      const fake = fakeUpgrade((request) => (request.downloadOnly ? results.staged() : results.success()));
      const cycles = runner(home, WINDOW, fake.ports, { now: time.now });
      const inside = await cycles.tick();
      assert.equal(inside.plan?.action, 'upgrade');
      assert.equal(fake.calls[0]?.downloadOnly, false);
      assert.equal(inside.result?.status, 'success');
      time.set('12:00');
      const outside = await cycles.tick();
      assert.equal(outside.plan?.action, 'prestage');
      assert.equal(fake.calls[1]?.downloadOnly, true);
      assert.match(fake.calls[1]?.reason ?? '', /outside the maintenance window 02:00-05:00/);
      const waiting = home.store.kv.get<WaitingRecord>('daemon:waiting');
      assert.equal(waiting?.waiting_for, 'window');
      assert.match(waiting?.reason ?? '', /1\.1\.0 is staged and waits for the maintenance window 02:00-05:00/);
    }));

  test('auto_apply = false only pre-stages, inside the window too', () =>
    withHome(async (home) => {
      const fake = fakeUpgrade(() => results.staged());
      const cycles = runner(home, `${WINDOW}auto_apply = false\n`, fake.ports, { now: clock('03:00').now });
      await cycles.tick();
      await cycles.tick();
      assert.deepEqual(
        fake.calls.map((call) => call.downloadOnly),
        [true, true],
      );
      assert.equal(home.store.kv.get<WaitingRecord>('daemon:waiting')?.waiting_for, 'auto_apply');
    }));

  test("the app's updates.lock: pre-stage and record the wait; lock gone: the next cycle upgrades and clears it", () =>
    withHome(async (home) => {
      const lockFile = path.join(home.home, 'docker', 'data', 'updates.lock');
      await mkdir(path.dirname(lockFile), { recursive: true });
      await writeFile(lockFile, 'busy\n');
      const time = clock('03:00');
      const fake = fakeUpgrade((request) => (request.downloadOnly ? results.staged() : results.success()));
      const cycles = runner(home, WINDOW, fake.ports, { now: time.now });

      const held = await cycles.tick();
      assert.equal(held.plan?.action, 'prestage');
      assert.equal(held.plan?.waitingOnLock, true);
      assert.equal(fake.calls[0]?.downloadOnly, true);
      const waiting = home.store.kv.get<WaitingRecord>('daemon:waiting');
      assert.equal(waiting?.waiting_for, 'updates_lock');
      assert.match(
        waiting?.reason ?? '',
        /waits for the application to remove its update lock docker\/data\/updates\.lock/,
      );
      assert.equal(waiting?.since, time.now().toISOString());

      time.set('03:30');
      await cycles.tick();
      assert.equal(
        home.store.kv.get<WaitingRecord>('daemon:waiting')?.since,
        waiting?.since,
        'still the same wait: since is kept',
      );

      await rm(lockFile);
      time.set('04:00');
      const free = await cycles.tick();
      assert.equal(free.plan?.action, 'upgrade');
      assert.equal(fake.calls[2]?.downloadOnly, false);
      assert.equal(home.store.kv.get('daemon:waiting'), undefined, 'not waiting any more');
    }));

  test('[schedule] updates_lock is read relative to the home', () =>
    withHome(async (home) => {
      await writeFile(path.join(home.home, 'app.lock'), '');
      const fake = fakeUpgrade(() => results.staged());
      const cycles = runner(home, '[schedule]\nupdates_lock = "app.lock"\n', fake.ports);
      const outcome = await cycles.tick();
      assert.equal(outcome.plan?.waitingFor, 'updates_lock');
    }));

  test('an up-to-date pre-stage clears the wait: nothing is waiting', () =>
    withHome(async (home) => {
      home.store.kv.set('daemon:waiting', { reason: 'old', since: 'x', version: '1.1.0', waiting_for: 'window' });
      const fake = fakeUpgrade(() => results.upToDate());
      await runner(home, WINDOW, fake.ports, { now: clock('12:00').now }).tick();
      assert.equal(home.store.kv.get('daemon:waiting'), undefined);
    }));

  test('outside the window the metered-link rate limit is passed to the download; inside, [download] rate_limit', () =>
    withHome(async (home) => {
      const time = clock('12:00');
      const fake = fakeUpgrade(() => results.upToDate());
      const cycles = runner(
        home,
        `${WINDOW}rate_limit_outside_window = 65536\n[download]\nrate_limit = 0\n`,
        fake.ports,
        { now: time.now },
      );
      await cycles.tick();
      time.set('03:00');
      await cycles.tick();
      assert.deepEqual(
        fake.calls.map((call) => call.rateLimit),
        [65536, 0],
      );
    }));

  test('a release already staged and still offered is not staged again', () =>
    withHome(async (home) => {
      const stagedRoot = path.join(home.home, 'cache', 'staging', '1.1.0-1', 'root');
      await mkdir(stagedRoot, { recursive: true });
      home.store.kv.set('staged', { version: '1.1.0', stagedRoot });
      let offered = '1.1.0';
      const fake = fakeUpgrade(() => results.staged('1.2.0'), { offered: async () => offered });
      const cycles = runner(home, WINDOW, fake.ports, { now: clock('12:00').now });
      const same = await cycles.tick();
      assert.equal(same.skipped, 'already_staged');
      assert.equal(fake.calls.length, 0, 'no upgrade run, nothing recorded again');
      assert.match(home.store.kv.get<WaitingRecord>('daemon:waiting')?.reason ?? '', /1\.1\.0 is staged/);
      offered = '1.2.0';
      const newer = await cycles.tick();
      assert.equal(newer.skipped, null);
      assert.equal(fake.calls.length, 1, 'a newer release is pre-staged');
      await rm(stagedRoot, { recursive: true });
      home.store.kv.set('staged', { version: '1.2.0', stagedRoot });
      offered = '1.2.0';
      await cycles.tick();
      assert.equal(fake.calls.length, 2, 'staged files gone: staged again');
      // An install that rolled back after its apply let go of the extraction (stagedRoot null).
      home.store.kv.set('staged', { version: '1.2.0', stagedRoot: null });
      await cycles.tick();
      assert.equal(fake.calls.length, 3, 'extraction let go: staged again, so the window is spent on the switch');
    }));

  test('server failures back off: cycles are skipped 1, then 3, and a success resets the count', () =>
    withHome(async (home) => {
      let failing = true;
      const fake = fakeUpgrade(() => (failing ? results.failed('E_NETWORK') : results.upToDate()));
      const cycles = runner(home, '', fake.ports);
      const sequence: string[] = [];
      for (let tick = 0; tick < 8; tick += 1) {
        const outcome = await cycles.tick();
        sequence.push(outcome.skipped ?? outcome.result?.status ?? '?');
      }
      assert.deepEqual(sequence, ['failed', 'backoff', 'failed', 'backoff', 'backoff', 'backoff', 'failed', 'backoff']);
      assert.equal(cycles.failures, 3);
      assert.equal(cycles.skipLeft, 6);
      failing = false;
      while (cycles.skipLeft > 0) await cycles.tick();
      const recovered = await cycles.tick();
      assert.equal(recovered.result?.status, 'up_to_date');
      assert.equal(cycles.failures, 0);
      assert.equal(cycles.skipLeft, 0);
      const last = home.store.kv.get<{ status: string; failures: number }>('daemon:last_cycle');
      assert.equal(last?.status, 'up_to_date');
    }));

  test('backoff is bounded: never more than maxSkip cycles in a row', () =>
    withHome(async (home) => {
      const fake = fakeUpgrade(() => results.failed('E_HTTP'));
      const cycles = runner(home, '', fake.ports, { maxSkip: 4 });
      let longest = 0;
      let run = 0;
      for (let tick = 0; tick < 40; tick += 1) {
        const outcome = await cycles.tick();
        run = outcome.skipped === 'backoff' ? run + 1 : 0;
        longest = Math.max(longest, run);
      }
      assert.equal(longest, 4);
    }));

  test('a failure of the box itself (not the server) does not back off', () =>
    withHome(async (home) => {
      const fake = fakeUpgrade(() => results.failed('E_HASH_MISMATCH', 'verifying'));
      const cycles = runner(home, '', fake.ports);
      for (let tick = 0; tick < 3; tick += 1) assert.equal((await cycles.tick()).skipped, null);
      assert.equal(fake.calls.length, 3);
    }));

  test('jitter: the cycle waits a delay within [0, jitter] before it starts', () =>
    withHome(async (home) => {
      const waits: number[] = [];
      const randoms = [0, 0.5, 0.999, 1];
      let draw = 0;
      const fake = fakeUpgrade(() => results.upToDate());
      const cycles = runner(home, '[schedule]\njitter = "10m"\n', fake.ports, {
        jitter: true,
        random: () => randoms[draw++] ?? 0,
        sleep: async (ms) => {
          waits.push(ms);
        },
      });
      const delays: number[] = [];
      for (const _ of randoms) delays.push((await cycles.tick()).jitterMs);
      assert.deepEqual(delays, [0, 300_000, 599_400, 600_000]);
      assert.deepEqual(waits, [300_000, 599_400, 600_000], 'slept exactly the delay (none for 0)');
      assert.equal(fake.calls.length, 4);
    }));
});
