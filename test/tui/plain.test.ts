import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createPlainRenderer } from '../../src/cli/render/plain.js';
import type { UpgradeEvent } from '../../src/events/index.js';
import type { UpgradeResult } from '../../src/upgrade/result.js';
import {
  ANSI,
  cancelled,
  failedRecovered,
  failedUnchanged,
  failedUnrecovered,
  MiB,
  partial,
  plan,
  progress,
  renderLines,
  result,
  success,
  successfulRun,
} from './fixtures.js';

function renderPlain(events: UpgradeEvent[], clock: number[] = []): string[] {
  return renderLines(createPlainRenderer, events, clock);
}

function summaryOf(value: UpgradeResult): string[] {
  return renderPlain([result(value)]);
}

describe('plain renderer (no terminal)', () => {
  test('a whole run prints one line per step start and end with durations, the plan, and the summary', () => {
    const lines = renderPlain(successfulRun());
    assert.equal(lines[0], 'step checking started');
    assert.equal(lines[1], 'step checking done in 0.3s');
    assert.equal(lines[2], 'upgrade 1.4.0.1 -> 1.4.0.2 (patch, download 27.0 MiB)');
    assert.deepEqual(lines.slice(3, 6), [
      '  notes: Faster startup',
      '  notes: Fixes the login page',
      '  notes: New dashboard',
    ]);
    assert.ok(lines.includes('step downloading started'));
    assert.ok(lines.includes('downloading 0% 0 B/27.0 MiB 5.1 MiB/s ETA 6s'));
    assert.ok(lines.includes('step cleaning_up done in 1.2s'));
    assert.deepEqual(lines.slice(-6), [
      'result: success - Upgraded to 1.4.0.2',
      '  versions: 1.4.0.1 -> 1.4.0.2',
      '  strategy: patch',
      '  downtime: 8.2s',
      '  backup: #7',
      '  migrations: up-1.4.0.2.sh',
    ]);
  });

  test('no line ever holds an ANSI escape, even from hostile notes, messages and errors', () => {
    const red = '\u001b[31m';
    const lines = renderPlain([
      { ...plan, notes: `${red}Big\u001b[0m release\n\u001b]0;owned\u0007second` },
      { type: 'log', level: 'warn', message: `${red}careful`, step: 'staging' },
      {
        type: 'step',
        step: 'applying',
        status: 'failed',
        ms: 10,
        error: { code: 'E_APPLY', message: `${red}boom\nsecond line` },
      },
      result({
        ...failedRecovered,
        diagnosis: { cause: `${red}cause`, recommendations: [`${red}do this`] },
      } as UpgradeResult),
      ...successfulRun(),
    ]);
    for (const line of lines) assert.doesNotMatch(line, ANSI, line);
    assert.ok(lines.includes('warn: [staging] careful'));
    assert.ok(lines.includes('step applying FAILED after 0.0s: E_APPLY: boom second line'));
    assert.ok(lines.includes('  notes: Big release'));
  });

  test('progress prints at most one line every 2 s per step', () => {
    const events: UpgradeEvent[] = [];
    const clock: number[] = [];
    for (let time = 0; time <= 5000; time += 250) {
      events.push(progress(time * 1000));
      clock.push(time);
      events.push(progress(time, { step: 'backing_up', total: null, eta: null }));
      clock.push(time);
    }
    const lines = renderPlain(events, clock);
    const downloading = lines.filter((line) => line.startsWith('downloading '));
    const backingUp = lines.filter((line) => line.startsWith('backing_up '));
    assert.equal(downloading.length, 3, downloading.join('\n')); // at 0, 2000 and 4000 ms
    assert.match(downloading[1]!, /1\.9 MiB\/27\.0 MiB/);
    assert.equal(backingUp.length, 3, 'each step has its own throttle');
  });

  test('a step that starts again prints its next progress at once', () => {
    const events: UpgradeEvent[] = [
      progress(1),
      { type: 'step', step: 'downloading', status: 'running' },
      progress(2 * MiB),
    ];
    const lines = renderPlain(events, [0, 100, 200]);
    assert.equal(lines.filter((line) => line.startsWith('downloading ')).length, 2);
  });

  test('the downtime line gives the breakdown when the result has one, leaving out the parts that took no time', () => {
    const downtime = { stop: 1000, backup: 0, apply: 100, migrations: 0, start: 2100, healthy: 4300, other: 0 };
    assert.ok(
      summaryOf({ ...success, downtime }).includes(
        '  downtime: 8.2s (stop 1.0s, apply 0.1s, start 2.1s, healthy 4.3s)',
      ),
    );
  });

  test('summaries: up to date, staged, partial success', () => {
    assert.deepEqual(
      summaryOf({ status: 'up_to_date', version: '1.4.0.2', offered: '1.4.0.2', reason: 'same version' }),
      ['result: up_to_date - Up to date: 1.4.0.2', '  offered: 1.4.0.2', '  reason: same version'],
    );
    assert.equal(
      summaryOf({
        status: 'staged',
        version: '1.4.0.2',
        strategy: 'full',
        package: '/c/p.tar.gz',
        upgrade_id: 3,
        steps: [],
      })[0],
      'result: staged - Staged 1.4.0.2: ready to switch',
    );
    assert.deepEqual(summaryOf(partial), [
      'result: partial_success - Upgraded to 1.4.0.2, but some services are not healthy',
      '  versions: 1.4.0.1 -> 1.4.0.2',
      '  unhealthy: metrics (non-critical)',
      '  healthy: app, db',
      '  downtime: 9.1s',
      '  backup: #7',
      '  recommendations:',
      '    - Check the logs of metrics: docker logs metrics',
    ]);
  });

  test('a failure summary gives the error, the diagnosis, recommendations and manual steps', () => {
    assert.deepEqual(summaryOf(failedUnrecovered), [
      'result: failed - Failed at health_check; the rollback did NOT complete',
      '  error: E_HEALTH: Service app is not healthy after 180s',
      '  cause: Service app is not healthy after 180s',
      '  backup: #7',
      '  failure bundle: logs/failures/12',
      '  recommendations:',
      '    - app: port 8080 is already in use by another process.',
      '    - Raise [health] timeout if the services need longer to start.',
      '  manual steps:',
      '    1. Run `nuwax rollback 7`.',
      '    2. Check `docker-compose ps`.',
    ]);
    assert.equal(summaryOf(failedRecovered)[0], 'result: failed - Failed at health_check; rolled back to 1.4.0.1');
  });

  test('a failure before anything changed, and a cancel, say nothing was changed', () => {
    assert.deepEqual(summaryOf(failedUnchanged), [
      'result: failed - Failed at downloading: nothing was changed',
      '  error: E_NETWORK: Connection refused by 127.0.0.1:9',
    ]);
    assert.equal(summaryOf(cancelled)[0], 'result: failed - Cancelled: nothing was changed');
  });
});
