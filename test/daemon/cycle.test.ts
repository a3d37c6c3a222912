import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseWindow } from '../../src/config/index.js';
import { isSwitchStep } from '../../src/events/index.js';
import {
  type CycleFacts,
  cyclesToSkip,
  formatWindow,
  isServerFailure,
  jitterDelayMs,
  planCycle,
  rateLimitFor,
} from '../../src/daemon/index.js';

const at = (time: string) => new Date(`2026-11-25T${time}:00`);
const window = parseWindow('02:00-05:00');

describe('planCycle: upgrade or pre-stage (SPEC 10)', () => {
  const rows: Array<[string, CycleFacts, 'upgrade' | 'prestage', string | null]> = [
    [
      'inside the window: upgrade',
      { now: at('03:00'), window, autoApply: true, updatesLockPresent: false },
      'upgrade',
      null,
    ],
    [
      'at the window start: upgrade',
      { now: at('02:00'), window, autoApply: true, updatesLockPresent: false },
      'upgrade',
      null,
    ],
    [
      'one minute before the window: pre-stage',
      { now: at('01:59'), window, autoApply: true, updatesLockPresent: false },
      'prestage',
      'window',
    ],
    [
      'outside the window: pre-stage',
      { now: at('12:00'), window, autoApply: true, updatesLockPresent: false },
      'prestage',
      'window',
    ],
    [
      'at the window end: pre-stage',
      { now: at('05:00'), window, autoApply: true, updatesLockPresent: false },
      'prestage',
      'window',
    ],
    [
      'no window configured: upgrade at any hour',
      { now: at('12:00'), window: undefined, autoApply: true, updatesLockPresent: false },
      'upgrade',
      null,
    ],
    [
      'a window over midnight: inside at 23:30',
      { now: at('23:30'), window: parseWindow('22:00-04:00'), autoApply: true, updatesLockPresent: false },
      'upgrade',
      null,
    ],
    [
      'a window over midnight: inside at 03:59',
      { now: at('03:59'), window: parseWindow('22:00-04:00'), autoApply: true, updatesLockPresent: false },
      'upgrade',
      null,
    ],
    [
      'a window over midnight: outside at 12:00',
      { now: at('12:00'), window: parseWindow('22:00-04:00'), autoApply: true, updatesLockPresent: false },
      'prestage',
      'window',
    ],
    [
      'auto_apply false: pre-stage only, even inside the window',
      { now: at('03:00'), window, autoApply: false, updatesLockPresent: false },
      'prestage',
      'auto_apply',
    ],
    [
      'auto_apply false and no window: pre-stage only',
      { now: at('12:00'), window: undefined, autoApply: false, updatesLockPresent: false },
      'prestage',
      'auto_apply',
    ],
    [
      'the app holds updates.lock inside the window: pre-stage and wait on it',
      { now: at('03:00'), window, autoApply: true, updatesLockPresent: true },
      'prestage',
      'updates_lock',
    ],
    [
      'the app holds updates.lock outside the window: the window is what it waits for first',
      { now: at('12:00'), window, autoApply: true, updatesLockPresent: true },
      'prestage',
      'window',
    ],
  ];
  for (const [name, facts, action, waitingFor] of rows) {
    test(name, () => {
      const plan = planCycle(facts);
      assert.equal(plan.action, action);
      assert.equal(plan.waitingFor, waitingFor);
      assert.equal(plan.waitingOnLock, waitingFor === 'updates_lock');
    });
  }

  test('the reason names the window, the lock file and the staged version', () => {
    assert.match(
      planCycle({ now: at('12:00'), window, autoApply: true, updatesLockPresent: false, staged: '1.1.0' }).reason,
      /outside the maintenance window 02:00-05:00: pre-staging only \(1\.1\.0 is staged\)/,
    );
    assert.match(
      planCycle({
        now: at('03:00'),
        window,
        autoApply: true,
        updatesLockPresent: true,
        updatesLockPath: 'docker/data/updates.lock',
      }).reason,
      /docker\/data\/updates\.lock/,
    );
    assert.match(
      planCycle({ now: at('03:00'), window, autoApply: true, updatesLockPresent: false }).reason,
      /inside the maintenance window 02:00-05:00/,
    );
  });

  test('insideWindow follows the clock, not auto_apply or the lock', () => {
    assert.equal(
      planCycle({ now: at('03:00'), window, autoApply: false, updatesLockPresent: true }).insideWindow,
      true,
    );
    assert.equal(
      planCycle({ now: at('12:00'), window, autoApply: true, updatesLockPresent: false }).insideWindow,
      false,
    );
  });

  test('formatWindow writes back what parseWindow read', () => {
    for (const text of ['02:00-05:00', '22:30-04:15', '00:00-23:59'])
      assert.equal(formatWindow(parseWindow(text)), text);
  });
});

describe('rate limit, jitter, backoff', () => {
  test('outside the window the metered-link limit applies; inside, [download] rate_limit', () => {
    assert.equal(rateLimitFor(true, { download: 0, outsideWindow: 50_000 }), 0);
    assert.equal(rateLimitFor(false, { download: 0, outsideWindow: 50_000 }), 50_000);
    assert.equal(rateLimitFor(false, { download: 1_000_000, outsideWindow: undefined }), 1_000_000);
    assert.equal(rateLimitFor(true, { download: 1_000_000, outsideWindow: 50_000 }), 1_000_000);
  });

  test('jitter is always within [0, jitter], whatever the random source returns', () => {
    for (const random of [0, 1e-9, 0.25, 0.5, 0.999999, 1, -1, 2, Number.NaN, Number.POSITIVE_INFINITY]) {
      const delay = jitterDelayMs(600, () => random);
      assert.ok(delay >= 0 && delay <= 600_000, `${random} → ${delay}`);
    }
    assert.equal(
      jitterDelayMs(600, () => 0.5),
      300_000,
    );
    assert.equal(
      jitterDelayMs(0, () => 0.9),
      0,
    );
  });

  test('jitter from Math.random spreads over the range and stays inside it', () => {
    const delays = Array.from({ length: 2000 }, () => jitterDelayMs(10));
    assert.ok(delays.every((delay) => delay >= 0 && delay <= 10_000));
    assert.ok(Math.min(...delays) < 1000 && Math.max(...delays) > 9000, 'spread over [0, 10 s]');
  });

  test('backoff after server failures grows and is bounded', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 10, 1000].map((failures) => cyclesToSkip(failures)),
      [0, 1, 3, 7, 15, 15, 15, 15],
    );
    assert.deepEqual(
      [1, 2, 3].map((failures) => cyclesToSkip(failures, 2)),
      [1, 2, 2],
    );
  });

  test('only the server failing counts for backoff', () => {
    assert.deepEqual(['E_NETWORK', 'E_HTTP', 'E_STALL'].map(isServerFailure), [true, true, true]);
    assert.deepEqual(['E_HASH_MISMATCH', 'E_DISK_FULL', 'E_HEALTH', undefined].map(isServerFailure), [
      false,
      false,
      false,
      false,
    ]);
  });

  test('the switch starts at backing_up: before it a stop aborts, from it a stop waits', () => {
    assert.deepEqual(
      ['checking', 'downloading', 'verifying', 'staging', 'loading_images'].map((step) => isSwitchStep(step as never)),
      [false, false, false, false, false],
    );
    assert.deepEqual(
      ['backing_up', 'stopping', 'applying', 'health_check', 'rolling_back'].map((step) => isSwitchStep(step as never)),
      [true, true, true, true, true],
    );
  });
});
