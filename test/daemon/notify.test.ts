import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { createWebhookNotifier, eventText } from '../../src/daemon/index.js';
import type { UpgradeEvent } from '../../src/events/index.js';
import { logger } from './harness.js';

/** A webhook receiver on 127.0.0.1 that answers the statuses queued, then 200 ('hang' never answers). */
class Receiver {
  readonly bodies: Array<Record<string, unknown>> = [];
  requests = 0;
  statuses: Array<number | 'hang'> = [];
  private server: Server | undefined;
  private readonly hanging: ServerResponse[] = [];
  url = '';

  async start(): Promise<this> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        this.requests += 1;
        const status = this.statuses.shift() ?? 200;
        if (status === 'hang') {
          this.hanging.push(response);
          return;
        }
        if (status < 300) this.bodies.push(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
        response.writeHead(status);
        response.end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/hook`;
    return this;
  }

  async stop(): Promise<void> {
    for (const response of this.hanging) response.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}

async function withReceiver(work: (receiver: Receiver) => Promise<void>): Promise<void> {
  const receiver = await new Receiver().start();
  try {
    await work(receiver);
  } finally {
    await receiver.stop();
  }
}

const upgradeRun: UpgradeEvent[] = [
  { type: 'step', step: 'checking', status: 'running' },
  { type: 'step', step: 'checking', status: 'done', ms: 12 },
  {
    type: 'plan',
    upgradeId: 7,
    from: '1.0.0',
    to: '1.1.0',
    strategy: 'patch',
    size: 100,
    notes: null,
    downloadOnly: false,
  },
  { type: 'progress', step: 'downloading', done: 50, total: 100, rate: 10, eta: 5 },
  { type: 'step', step: 'downloading', status: 'done', ms: 900 },
  { type: 'result', result: { status: 'success', from: '1.0.0', version: '1.1.0', strategy: 'patch' } },
];

describe('webhooks (SPEC 10: every event)', () => {
  test('every event but progress is POSTed as JSON with a text line; a failed POST is retried', () =>
    withReceiver(async (receiver) => {
      receiver.statuses = [500];
      const notifier = createWebhookNotifier([receiver.url], logger, { baseDelayMs: 20, host: 'box-7' });
      for (const event of upgradeRun) notifier.listener(event);
      await notifier.flush(5000);
      assert.equal(receiver.requests, 6, 'five events, the first sent twice');
      assert.deepEqual(
        receiver.bodies.map((body) => body.type),
        ['step', 'step', 'plan', 'step', 'result'],
      );
      const last = receiver.bodies.at(-1)!;
      assert.equal(last.text, 'nuwax on box-7: upgrade 1.0.0 → 1.1.0 success');
      assert.equal(last.host, 'box-7');
      assert.deepEqual(last.result, { status: 'success', from: '1.0.0', version: '1.1.0', strategy: 'patch' });
      assert.equal(receiver.bodies[2]!.text, 'nuwax on box-7: upgrading 1.0.0 → 1.1.0 (patch)');
    }));

  test('a check that finds nothing posts nothing; a check that fails is posted', () =>
    withReceiver(async (receiver) => {
      const notifier = createWebhookNotifier([receiver.url], logger, { baseDelayMs: 20 });
      notifier.listener({ type: 'step', step: 'checking', status: 'running' });
      notifier.listener({ type: 'step', step: 'checking', status: 'done', ms: 3 });
      notifier.listener({ type: 'result', result: { status: 'up_to_date', version: '1.0.0' } });
      notifier.listener({ type: 'step', step: 'checking', status: 'running' });
      notifier.listener({
        type: 'step',
        step: 'checking',
        status: 'failed',
        ms: 3,
        error: { code: 'E_NETWORK', message: 'refused' },
      });
      notifier.listener({
        type: 'result',
        result: {
          status: 'failed',
          step: 'checking',
          changed: false,
          error: { code: 'E_NETWORK', message: 'refused' },
        },
      });
      await notifier.flush(5000);
      assert.deepEqual(
        receiver.bodies.map(
          (body) =>
            `${String(body.type)}:${String((body as { status?: string }).status ?? (body.result as { status?: string } | undefined)?.status)}`,
        ),
        ['step:running', 'step:failed', 'result:failed'],
      );
      assert.match(String(receiver.bodies.at(-1)!.text), /failed at checking: E_NETWORK: refused \(nothing changed\)/);
    }));

  test('a receiver that always fails gets exactly 3 tries per event, and the upgrade never sees an error', () =>
    withReceiver(async (receiver) => {
      receiver.statuses = Array.from({ length: 20 }, () => 503);
      const notifier = createWebhookNotifier([receiver.url], logger, { baseDelayMs: 10 });
      notifier.listener({
        type: 'plan',
        upgradeId: 1,
        from: null,
        to: '1.0.0',
        strategy: 'full',
        size: null,
        notes: null,
        downloadOnly: false,
      });
      await notifier.flush(5000);
      assert.equal(receiver.requests, 3);
      assert.equal(receiver.bodies.length, 0);
    }));

  test('a receiver that never answers does not block: the listener returns at once and flush gives up on time', () =>
    withReceiver(async (receiver) => {
      receiver.statuses = ['hang', 'hang', 'hang'];
      const notifier = createWebhookNotifier([receiver.url], logger, { baseDelayMs: 10, requestTimeoutMs: 60_000 });
      const started = Date.now();
      for (const event of upgradeRun) notifier.listener(event);
      assert.ok(Date.now() - started < 50, 'enqueueing is synchronous');
      await notifier.flush(300);
      const took = Date.now() - started;
      assert.ok(took < 2000, `flush returned after ${took} ms`);
    }));

  test('the queue is bounded: a slow receiver loses the oldest events, not memory', () =>
    withReceiver(async (receiver) => {
      receiver.statuses = ['hang'];
      const notifier = createWebhookNotifier([receiver.url], logger, { maxQueue: 5, tries: 1, requestTimeoutMs: 200 });
      notifier.listener({
        type: 'plan',
        upgradeId: 1,
        from: null,
        to: '1.0.0',
        strategy: 'full',
        size: null,
        notes: null,
        downloadOnly: false,
      });
      for (let index = 0; index < 50; index += 1)
        notifier.listener({ type: 'log', level: 'info', message: `line ${index}` });
      await notifier.flush(5000);
      assert.deepEqual(
        receiver.bodies.map((body) => body.message),
        ['line 45', 'line 46', 'line 47', 'line 48', 'line 49'],
      );
    }));

  test('no webhooks configured: nothing is sent and flush returns at once', async () => {
    const notifier = createWebhookNotifier([], logger);
    for (const event of upgradeRun) notifier.listener(event);
    await notifier.flush(10);
  });

  test('the text line says how a failure ended', () => {
    const plan = {
      type: 'plan',
      upgradeId: 1,
      from: '1.0.0',
      to: '1.1.0',
      strategy: 'full',
      size: null,
      notes: null,
      downloadOnly: false,
    } as const;
    const failed = (extra: Record<string, unknown>): UpgradeEvent => ({
      type: 'result',
      result: {
        status: 'failed',
        step: 'health_check',
        error: { code: 'E_HEALTH', message: 'web unhealthy' },
        ...extra,
      },
    });
    assert.equal(
      eventText(failed({ recovered: true, previous_version: '1.0.0' }), 'h', plan),
      'nuwax on h: upgrade 1.0.0 → 1.1.0 rolled_back at health_check: E_HEALTH: web unhealthy (rolled back to 1.0.0)',
    );
    assert.match(
      eventText(failed({ recovered: false, previous_version: '1.0.0' }), 'h', plan),
      /failed_unrecovered at health_check: .*NOT recovered/,
    );
    const cancelled = failed({
      changed: false,
      error: { code: 'E_CANCELLED', message: 'Cancelled' },
      step: 'stopping',
    });
    assert.match(eventText(cancelled, 'h', plan), /1\.1\.0 cancelled at stopping/);
    assert.equal(
      eventText({ type: 'result', result: { status: 'staged', version: '1.1.0', strategy: 'patch' } }, 'h'),
      'nuwax on h: release 1.1.0 staged (patch); it installs at the next switch',
    );
    assert.equal(
      eventText(
        {
          type: 'result',
          result: { status: 'partial_success', from: '1.0.0', version: '1.1.0', unhealthy_services: ['worker'] },
        },
        'h',
      ),
      'nuwax on h: upgrade 1.0.0 → 1.1.0 partial_success (unhealthy: worker)',
    );
    assert.equal(
      eventText({ type: 'step', step: 'applying', status: 'done', ms: 1500 }, 'h'),
      'nuwax on h: applying done in 1.5 s',
    );
  });
});
