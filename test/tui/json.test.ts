import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createJsonRenderer } from '../../src/cli/render/json.js';
import type { UpgradeEvent } from '../../src/events/index.js';
import { failedRecovered, MiB, progress, result, renderLines, success, successfulRun } from './fixtures.js';

function renderJson(events: UpgradeEvent[], clock: number[] = []): string[] {
  return renderLines(createJsonRenderer, events, clock);
}

describe('--json renderer', () => {
  test('every line parses; the last line is exactly the SPEC 8 result object', () => {
    const lines = renderJson(successfulRun());
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(parsed.at(-1), success);
    assert.equal(lines.at(-1), JSON.stringify(success), 'not wrapped in an event');
    for (const event of parsed.slice(0, -1)) {
      assert.ok(['plan', 'step', 'progress', 'log'].includes(String(event.type)), JSON.stringify(event));
      assert.equal(typeof event.time, 'string');
    }
    assert.equal(parsed.filter((event) => event.type === 'step').length, 26);
    assert.deepEqual(parsed.find((event) => event.type === 'plan')?.to, '1.4.0.2');
    assert.equal(
      lines.some((line) => line.includes('\n')),
      false,
      'one object per line',
    );
  });

  test('a failure result is the last line too', () => {
    const lines = renderJson([
      { type: 'step', step: 'health_check', status: 'failed', ms: 5, error: { code: 'E_HEALTH', message: 'x' } },
      result(failedRecovered),
    ]);
    assert.deepEqual(JSON.parse(lines.at(-1)!), failedRecovered);
  });

  test('progress is throttled to two lines a second per step, and the completing event always passes', () => {
    const events: UpgradeEvent[] = [];
    const clock: number[] = [];
    for (let time = 0; time < 2000; time += 100) {
      events.push(progress(time * 1000));
      clock.push(time);
    }
    events.push(progress(27 * MiB));
    clock.push(2010);
    const lines = renderJson(events, clock).map((line) => JSON.parse(line) as { done: number; step: string });
    assert.deepEqual(
      lines.map((line) => line.done),
      [0, 500_000, 1_000_000, 1_500_000, 27 * MiB],
    );
  });
});
