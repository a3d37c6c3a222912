import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { UpgradeEvent, UpgradeListener } from '../events/index.js';
import type { Logger } from '../log/index.js';

/** A line chat tools show for an event. */
export function eventText(event: UpgradeEvent): string {
  const host = os.hostname();
  switch (event.type) {
    case 'plan':
      return `nuwax on ${host}: ${event.downloadOnly ? 'pre-staging' : 'upgrading'} ${event.from ?? '(none)'} → ${event.to} (${event.strategy})`;
    case 'step':
      return `nuwax on ${host}: ${event.step} ${event.status}${event.error ? `: ${event.error.message}` : ''}`;
    case 'result':
      return `nuwax on ${host}: upgrade ${String(event.result.from ?? event.result.previous_version ?? '')} → ${String(event.result.version ?? '')} ${event.result.status}`;
    case 'log':
      return `nuwax on ${host}: ${event.message}`;
    default:
      return `nuwax on ${host}: ${event.type}`;
  }
}

/**
 * Webhooks from [notify] (issue 6): every non-progress event POSTed as JSON with a `text` line,
 * retried with backoff, in a bounded queue, never blocking or failing the upgrade.
 */
export function createWebhookNotifier(urls: string[], logger: Logger, options: { retries?: number; baseDelayMs?: number; maxQueue?: number } = {}): { listener: UpgradeListener; flush(timeoutMs: number): Promise<void> } {
  const queue: UpgradeEvent[] = [];
  let running: Promise<void> | null = null;
  const post = async (url: string, event: UpgradeEvent) => {
    const body = JSON.stringify({ ...event, text: eventText(event), host: os.hostname(), time: new Date().toISOString() });
    for (let attempt = 0; attempt <= (options.retries ?? 3); attempt += 1) {
      try {
        const response = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, headersTimeout: 10_000, bodyTimeout: 10_000 });
        await response.body.dump();
        if (response.statusCode < 300) return;
        throw new Error(`HTTP ${response.statusCode}`);
      } catch (error) {
        if (attempt === (options.retries ?? 3)) logger.warn({ url, err: error }, 'webhook failed; giving up on this event');
        else await sleep((options.baseDelayMs ?? 500) * 2 ** attempt);
      }
    }
  };
  const drain = async () => {
    while (queue.length > 0) {
      const event = queue.shift()!;
      await Promise.all(urls.map((url) => post(url, event)));
    }
    running = null;
  };
  return {
    listener(event) {
      if (urls.length === 0 || event.type === 'progress') return;
      if (queue.length >= (options.maxQueue ?? 200)) queue.shift();
      queue.push(event);
      running ??= drain();
    },
    async flush(timeoutMs) {
      if (running) await Promise.race([running, sleep(timeoutMs)]);
    },
  };
}
