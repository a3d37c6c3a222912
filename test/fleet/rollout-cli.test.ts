import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { openStore } from '../../src/state/index.js';
import { rolloutBucket } from '../../src/strategy/index.js';
import { runCli } from '../helpers/cli.js';
import { type Origin, withOrigin } from './origin.js';

/**
 * Staged rollouts through the real CLI, against nuwax's own `serve` on 127.0.0.1, with a `rollout`
 * added to the manifest.
 */
const BOX_ID = 'box-under-test';

/** A salt that puts BOX_ID at or above `least`, so rollout `least` % holds it back. */
function saltAbove(least: number): string {
  for (let index = 0; ; index += 1) if (rolloutBucket(BOX_ID, `salt-${index}`) >= least) return `salt-${index}`;
}

const withRelease = (work: (origin: Origin) => Promise<void>, clientId: string | null = BOX_ID) =>
  withOrigin(work, { clientId });

const history = async (box: string) =>
  (await runCli(['--home', box, '--json', 'history'])).json() as unknown as unknown[];

describe('staged rollouts through the CLI', () => {
  test('check on a box outside the rollout says it is not offered yet, in words and in --json', () =>
    withRelease(async ({ box, rollout }) => {
      const salt = saltAbove(10);
      await rollout({ percent: 10, salt });
      const json = await runCli(['--home', box, '--json', 'check']);
      assert.equal(json.code, 0, json.stderr);
      const result = json.json();
      assert.equal(result.strategy, 'none');
      assert.equal(result.offered, '1.1.0');
      assert.equal(result.reason, 'not offered to this box yet (rollout 10 %)');
      assert.deepEqual(result.rollout, { percent: 10, salt, bucket: rolloutBucket(BOX_ID, salt), offered: false });
      const human = await runCli(['--home', box, 'check']);
      assert.match(human.stdout, /strategy: {3}none — not offered to this box yet \(rollout 10 %\)/);
      assert.match(human.stdout, /rollout: {4}10 % \(this box: \d+\.\d\d\)/);
    }));

  test('the percent is a sharp line: at the bucket the box waits, one hundredth above it takes the release', () =>
    withRelease(async ({ box, rollout }) => {
      const salt = saltAbove(1);
      const bucket = rolloutBucket(BOX_ID, salt);
      await rollout({ percent: bucket, salt });
      assert.equal((await runCli(['--home', box, '--json', 'check'])).json().strategy, 'none');
      await rollout({ percent: Math.round((bucket + 0.01) * 100) / 100, salt });
      const inside = (await runCli(['--home', box, '--json', 'check'])).json();
      assert.equal(inside.strategy, 'full');
      assert.equal((inside.rollout as { offered: boolean }).offered, true);
    }));

  test('without a client id one is generated once and kept in SQLite: the bucket stays', () =>
    withRelease(async ({ box, rollout }) => {
      await rollout({ percent: 50, salt: 'keep' });
      const first = (await runCli(['--home', box, '--json', 'check'])).json();
      const second = (await runCli(['--home', box, '--json', 'check'])).json();
      const store = openStore(path.join(box, 'data', 'nuwax.db'));
      const id = store.kv.get<string>('client_id');
      store.close();
      assert.match(id ?? '', /^[0-9a-f-]{36}$/);
      const bucket = (first.rollout as { bucket: number }).bucket;
      assert.equal(bucket, rolloutBucket(id!, 'keep'));
      assert.equal((second.rollout as { bucket: number }).bucket, bucket);
    }, null));

  test("the nuwax API's client id is the one that counts when the box has one", () =>
    withRelease(async ({ box, rollout }) => {
      const store = openStore(path.join(box, 'data', 'nuwax.db'));
      store.kv.set('server:client_id', 'registered-by-the-api');
      store.close();
      await rollout({ percent: 50, salt: 'api' });
      const result = (await runCli(['--home', box, '--json', 'check'])).json();
      assert.equal((result.rollout as { bucket: number }).bucket, rolloutBucket('registered-by-the-api', 'api'));
    }));

  test('the daemon treats a release outside the rollout as none: nothing downloaded or recorded; raised, it stages', () =>
    withRelease(async ({ box, rollout, cached }) => {
      const salt = saltAbove(10);
      await rollout({ percent: 10, salt });
      const run = await runCli(['--home', box, '--json', 'daemon', '--once']);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.deepEqual(
        { status: run.json().status, reason: run.json().reason },
        { status: 'up_to_date', reason: 'not offered to this box yet (rollout 10 %)' },
      );
      assert.deepEqual(await cached(), []);
      assert.deepEqual(await history(box), []);
      const status = (await runCli(['--home', box, '--json', 'status'])).json();
      assert.equal(status.staged ?? null, null);

      await rollout({ percent: 100, salt });
      const raised = await runCli(['--home', box, '--json', 'daemon', '--once']);
      assert.equal(raised.code, 0, raised.stdout + raised.stderr);
      assert.equal(raised.json().status, 'staged');
      assert.equal(
        ((await runCli(['--home', box, '--json', 'status'])).json().staged as { version: string }).version,
        '1.1.0',
      );
    }));

  test('upgrade --force-full does not bypass the rollout; --ignore-rollout does', () =>
    withRelease(async ({ box, rollout, cached }) => {
      await rollout({ percent: 10, salt: saltAbove(10) });
      const forced = await runCli(['--home', box, '--json', 'upgrade', '--force-full', '--download-only', '--yes']);
      assert.equal(forced.code, 0, forced.stdout + forced.stderr);
      assert.equal(forced.json().status, 'up_to_date');
      assert.equal(forced.json().reason, 'not offered to this box yet (rollout 10 %)');
      assert.deepEqual(await cached(), []);

      const ignored = await runCli([
        ...['--home', box, '--json', 'upgrade', '--force-full', '--download-only', '--ignore-rollout', '--yes'],
      ]);
      assert.equal(ignored.code, 0, ignored.stdout + ignored.stderr);
      assert.deepEqual(
        { status: ignored.json().status, version: ignored.json().version },
        { status: 'staged', version: '1.1.0' },
      );
      assert.equal((await history(box)).length, 1);
    }));
});
