import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { StrategyDecision } from '../../src/strategy/index.js';
import { holdBack, rolloutBucket, rolloutReason, rolloutStatus } from '../../src/strategy/index.js';

const ids = Array.from({ length: 10_000 }, (_, index) => `box-${index}`);

describe('rollout buckets', () => {
  test('a box gets the same bucket every time, in [0, 100) with two decimals', () => {
    for (const id of ids.slice(0, 500)) {
      const bucket = rolloutBucket(id, 'salt-1');
      assert.equal(rolloutBucket(id, 'salt-1'), bucket);
      assert.ok(bucket >= 0 && bucket < 100, `${id}: ${bucket}`);
      assert.ok(Math.abs(Math.round(bucket * 100) - bucket * 100) < 1e-6, `${id}: ${bucket}`);
    }
  });

  test('raising the percent never drops a box that already qualified', () => {
    const percents = [0, 1, 5, 10, 25, 50, 75, 99.99, 100];
    for (const id of ids.slice(0, 2000)) {
      const offered = percents.map((percent) => rolloutStatus({ percent, salt: 's' }, id, '1.0.0')!.offered);
      const firstIn = offered.indexOf(true);
      if (firstIn >= 0) assert.ok(offered.slice(firstIn).every(Boolean), `${id}: ${offered.join(',')}`);
      assert.equal(offered[0], false, 'rollout 0 % offers no box');
      assert.equal(offered.at(-1), true, 'rollout 100 % offers every box');
    }
  });

  test('10,000 boxes: the share offered is within a point of the percent', () => {
    for (const percent of [1, 10, 50, 90]) {
      const share = (ids.filter((id) => rolloutBucket(id, 'fleet') < percent).length / ids.length) * 100;
      assert.ok(Math.abs(share - percent) < 1, `rollout ${percent} %: ${share.toFixed(2)} %`);
    }
  });

  test('a new salt re-draws: another tenth of the fleet goes first, not the same boxes', () => {
    const first = new Set(ids.filter((id) => rolloutBucket(id, 'release-a') < 10));
    const second = ids.filter((id) => rolloutBucket(id, 'release-b') < 10);
    const overlap = second.filter((id) => first.has(id)).length / second.length;
    // Independent draws overlap by about the percent itself.
    assert.ok(overlap < 0.15, `overlap ${overlap}`);
  });

  test('without a salt the offered version is the salt: every release re-draws', () => {
    const status = rolloutStatus({ percent: 10 }, 'box-1', '1.4.0.2')!;
    assert.equal(status.salt, '1.4.0.2');
    assert.equal(status.bucket, rolloutBucket('box-1', '1.4.0.2'));
  });
});

describe('holdBack: a table of decisions', () => {
  const full: StrategyDecision = {
    strategy: 'full',
    arch: 'x86_64',
    offered: '1.1.0',
    reason: 'No patch applies',
    package: { url: 'http://x/full.tar.gz', mirrors: [], sha256: null, size: 1 },
  };
  const none: StrategyDecision = { strategy: 'none', arch: 'x86_64', offered: '1.1.0', reason: 'already installed' };
  const status = (offered: boolean) => ({ percent: 10, salt: 's', bucket: offered ? 5 : 50, offered });
  const rows: Array<{
    name: string;
    decision: StrategyDecision;
    status: ReturnType<typeof status> | null;
    ignore: boolean;
    want: string;
  }> = [
    { name: 'no rollout in the manifest', decision: full, status: null, ignore: false, want: 'full' },
    { name: 'inside the rollout', decision: full, status: status(true), ignore: false, want: 'full' },
    { name: 'outside the rollout', decision: full, status: status(false), ignore: false, want: 'none' },
    { name: 'outside, --ignore-rollout', decision: full, status: status(false), ignore: true, want: 'full' },
    { name: 'nothing to do stays nothing', decision: none, status: status(false), ignore: false, want: 'none' },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const decision = holdBack(row.decision, row.status, row.ignore);
      assert.equal(decision.strategy, row.want);
      if (row.decision.strategy !== 'none' && row.want === 'none') {
        assert.equal(decision.reason, rolloutReason(10));
        assert.equal(decision.reason, 'not offered to this box yet (rollout 10 %)');
        assert.equal(decision.offered, '1.1.0');
      }
    });
  }
});
