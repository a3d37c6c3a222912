import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { reachedRuns } from '../../src/daemon/timing.js';
import { NuwaxError } from '../../src/errors/index.js';
import { createLineLogger } from '../../src/log/lines.js';
import { pino } from 'pino';

describe("the waiting daemon's planned times (node-cron's rules)", () => {
  const rows: Array<{ name: string; runs: number[]; now: number; due: number | null; missed: number[] }> = [
    { name: 'none reached yet', runs: [10_000, 20_000], now: 9_999, due: null, missed: [] },
    { name: 'reached on time: it runs', runs: [10_000, 20_000], now: 10_000, due: 10_000, missed: [] },
    { name: 'a second late: it still runs', runs: [10_000, 20_000], now: 11_000, due: 10_000, missed: [] },
    { name: 'more than a second late: missed', runs: [10_000, 20_000], now: 11_001, due: null, missed: [10_000] },
    {
      name: 'the clock stepped over three: the earlier are missed, the last runs',
      runs: [10_000, 20_000, 30_000, 40_000],
      now: 30_500,
      due: 30_000,
      missed: [10_000, 20_000],
    },
  ];
  for (const row of rows)
    test(row.name, () => {
      const { due, missed, rest } = reachedRuns(row.runs, row.now);
      assert.deepEqual({ due, missed }, { due: row.due, missed: row.missed });
      assert.ok(rest.every((time) => time > row.now));
    });
});

describe("the waiting daemon's log records", () => {
  test('are the records pino writes for the same call (level, fields, msg; an error with its cause)', () => {
    const lines: string[] = [];
    const ours = createLineLogger('info', (line) => lines.push(line));
    const chunks: string[] = [];
    const theirs = pino(
      { level: 'info', base: undefined },
      new Writable({
        write(chunk, _encoding, done) {
          chunks.push(chunk.toString());
          done();
        },
      }),
    );
    const error = new NuwaxError('E_LOCKED', 'Another nuwax is working on this home', {
      details: { pid: 1 },
      cause: new Error('EEXIST'),
    });
    for (const logger of [ours, theirs]) {
      logger.debug({ hidden: true }, 'below the level');
      logger.info({ cycle: 3, window: null }, 'daemon: stopped');
      logger.error({ err: error, code: error.code }, `${error.code}: ${error.message}`);
    }
    const withoutTime = (line: string) => {
      const record = JSON.parse(line) as Record<string, unknown>;
      assert.equal(typeof record.time, 'number');
      delete record.time;
      return record;
    };
    assert.equal(lines.length, 2);
    assert.deepEqual(lines.map(withoutTime), chunks.map(withoutTime));
  });
});
