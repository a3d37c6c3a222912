import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { createWebhookNotifier, decideWatch, startWatch, type WatchDecision } from '../../src/daemon/index.js';
import type { LogEvent } from '../../src/events/index.js';
import { logger } from './harness.js';

const NOW = 10 * 3_600_000;

describe('the watch decides from what it sees', () => {
  const rows: Array<{ name: string; down: string[]; auto: boolean; attempts: number[]; expected: WatchDecision }> = [
    { name: 'all up', down: [], auto: true, attempts: [], expected: 'healthy' },
    { name: 'down, auto_repair off: reported only', down: ['web'], auto: false, attempts: [], expected: 'report' },
    { name: 'down, no repair this hour', down: ['web'], auto: true, attempts: [], expected: 'repair' },
    {
      name: 'down, two repairs this hour (bound 3)',
      down: ['web'],
      auto: true,
      attempts: [NOW - 60_000, NOW - 120_000],
      expected: 'repair',
    },
    {
      name: 'down, three repairs this hour: the bound',
      down: ['web'],
      auto: true,
      attempts: [NOW - 1, NOW - 2, NOW - 3],
      expected: 'bound',
    },
    {
      name: 'down, three repairs but one over an hour ago',
      down: ['web'],
      auto: true,
      attempts: [NOW - 3_600_000, NOW - 2, NOW - 3],
      expected: 'repair',
    },
  ];
  for (const row of rows)
    test(row.name, () =>
      assert.equal(
        decideWatch({ criticalDown: row.down, autoRepair: row.auto, attempts: row.attempts, now: NOW, maxPerHour: 3 }),
        row.expected,
      ),
    );
});

function runner(busy = false) {
  let guarded = 0;
  return {
    get busy() {
      return busy;
    },
    get guarded() {
      return guarded;
    },
    async guard<T>(work: () => Promise<T>): Promise<T> {
      guarded += 1;
      return work();
    },
  };
}

describe('the watch loop', () => {
  test('repairs a critical service that stays down at most N times an hour, and says the bound once', async () => {
    const announced: LogEvent[] = [];
    let repairs = 0;
    const watch = startWatch(
      {
        intervalMs: 20,
        autoRepair: true,
        maxPerHour: 2,
        check: async () => ['web'],
        repair: async () => `repair ${++repairs}`,
        announce: (event) => announced.push(event),
        logger,
      },
      runner(),
    );
    await sleep(300);
    await watch.stop();
    assert.equal(repairs, 2);
    assert.deepEqual(
      announced.map((event) => event.level),
      ['warn', 'warn', 'error'],
    );
    assert.match(announced[2]!.message, /the bound of 2 repairs an hour is reached/);
  });

  test('never looks while an upgrade runs', async () => {
    let checks = 0;
    const busy = runner(true);
    const watch = startWatch(
      {
        intervalMs: 10,
        autoRepair: true,
        maxPerHour: 3,
        check: async () => {
          checks += 1;
          return ['web'];
        },
        repair: async () => 'repaired',
        announce: () => undefined,
        logger,
      },
      busy,
    );
    await sleep(100);
    await watch.stop();
    assert.equal(checks, 0);
    assert.equal(busy.guarded, 0);
  });

  test('an announcement reaches the webhook at once, outside any upgrade run', async () => {
    const bodies: Array<Record<string, unknown>> = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        bodies.push(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
        response.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const notifier = createWebhookNotifier([url], logger);
      notifier.announce({ type: 'log', level: 'warn', message: 'auto-repair: web was down; repaired' });
      await notifier.flush(5000);
      assert.equal(bodies.length, 1);
      assert.equal(bodies[0]!.message, 'auto-repair: web was down; repaired');
      assert.match(String(bodies[0]!.text), /warn: auto-repair: web was down/);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
