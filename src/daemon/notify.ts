import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { outcomeText, type PlanEvent, type UpgradeEvent, type UpgradeListener } from '../events/index.js';
import type { Logger } from '../log/index.js';

export interface WebhookOptions {
  /** Attempts per event and URL (default 3). */
  tries?: number;
  /** First retry delay; doubles each time (default 500 ms). */
  baseDelayMs?: number;
  /** Events waiting to be sent; the oldest is dropped past this (default 100). */
  maxQueue?: number;
  /** Per request (default 10 s). */
  requestTimeoutMs?: number;
  /**
   * Hold the events of a run until it has a plan, and drop them when it ends up to date, so a
   * daemon checking every 30 minutes does not post 48 "up to date" messages a day (default true).
   */
  quietWhenUpToDate?: boolean;
  host?: string;
}

export interface WebhookNotifier {
  listener: UpgradeListener;
  /** Sends an event now, outside any upgrade run (the watch's auto-repairs). */
  announce(event: UpgradeEvent): void;
  /** Waits for the queue to drain, at most timeoutMs; then cancels what is left. */
  flush(timeoutMs: number): Promise<void>;
}

function versionOf(value: unknown): string {
  return typeof value === 'string' && value !== '' ? value : '(none)';
}

/** The line chat tools show for an event (`text` of Slack, Mattermost, Rocket.Chat, Teams' MessageCard). */
export function eventText(event: UpgradeEvent, host: string = os.hostname(), plan?: PlanEvent): string {
  const prefix = `nuwax on ${host}:`;
  switch (event.type) {
    case 'plan':
      return (
        `${prefix} ${event.downloadOnly ? 'pre-staging' : 'upgrading'} ` +
        `${versionOf(event.from)} → ${event.to} (${event.strategy})`
      );
    case 'step': {
      const error = event.error
        ? `: ${event.error.code}: ${event.error.message}`
        : event.message
          ? `: ${event.message}`
          : '';
      const verb = event.status === 'running' ? 'started' : event.status;
      const took = event.ms !== undefined && event.status !== 'running' ? ` in ${(event.ms / 1000).toFixed(1)} s` : '';
      return `${prefix} ${event.step} ${verb}${took}${error}`;
    }
    case 'result':
      return `${prefix} ${resultText(event.result, plan)}`;
    case 'log':
      return `${prefix} ${event.level}: ${event.message}`;
    case 'progress':
      return `${prefix} ${event.step} ${event.done}/${event.total ?? '?'}`;
  }
}

function resultText(result: Record<string, unknown> & { status: string }, plan: PlanEvent | undefined): string {
  const from = versionOf(result.from ?? result.previous_version ?? plan?.from);
  const to = versionOf(result.version ?? plan?.to);
  switch (result.status) {
    case 'up_to_date':
      return `up to date (${versionOf(result.version)})`;
    case 'staged':
      return (
        `release ${to} staged (${String(result.strategy ?? plan?.strategy ?? '?')})` +
        `; it installs at the next switch`
      );
    case 'partial_success':
      return (
        `upgrade ${from} → ${to}` +
        ` partial_success (unhealthy: ${((result.unhealthy_services as string[] | undefined) ?? []).join(', ')})`
      );
    case 'failed': {
      const error = result.error as { code?: string; message?: string } | undefined;
      const outcome =
        'changed' in result
          ? 'nothing changed'
          : result.recovered
            ? `rolled back to ${from}`
            : 'NOT recovered: see the failure bundle';
      return (
        `upgrade ${from} → ${plan ? plan.to : '?'} ${outcomeText(result.status, result)}` +
        `: ${error?.code ?? '?'}: ${error?.message ?? ''} (${outcome})`
      );
    }
    default:
      return `upgrade ${from} → ${to} ${result.status}`;
  }
}

/** One POST, tried `tries` times with doubling delays; a final failure is logged, never thrown. */
async function postWithRetries(
  url: string,
  body: string,
  type: string,
  options: { tries: number; baseDelayMs: number; timeoutMs: number; signal: AbortSignal; logger: Logger },
): Promise<void> {
  const { tries, signal, logger } = options;
  for (let attempt = 1; attempt <= tries && !signal.aborted; attempt += 1) {
    try {
      // Loaded on the first POST: importing this folder (status reads the lock) stays light.
      const { request } = await import('undici');
      const response = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        signal,
      });
      await response.body.dump();
      if (response.statusCode < 300) return;
      throw new Error(`HTTP ${response.statusCode}`);
    } catch (error) {
      if (attempt === tries || signal.aborted) {
        logger.warn({ url, event: type, attempts: attempt, err: error }, 'webhook failed; this event is dropped');
        return;
      }
      logger.debug({ url, attempt, err: error }, 'webhook failed; retrying');
      // Cancelled by flush at exit: the loop condition ends the retries.
      await sleep(options.baseDelayMs * 2 ** (attempt - 1), undefined, { signal }).catch(() => undefined);
    }
  }
}

/**
 * Webhooks from `[notify] webhooks` (SPEC 2, 10): every event but progress POSTed as JSON with a
 * `text` line, retried with backoff, from a bounded queue, never blocking or failing the upgrade
 * (the listener only enqueues; failures are logged).
 */
export function createWebhookNotifier(urls: string[], logger: Logger, options: WebhookOptions = {}): WebhookNotifier {
  const tries = Math.max(1, options.tries ?? 3);
  const maxQueue = Math.max(1, options.maxQueue ?? 100);
  const host = options.host ?? os.hostname();
  const quiet = options.quietWhenUpToDate ?? true;
  const cancel = new AbortController();
  const queue: Array<{ event: UpgradeEvent; plan: PlanEvent | undefined }> = [];
  let held: UpgradeEvent[] = [];
  let plan: PlanEvent | undefined;
  let running: Promise<void> | null = null;
  let dropped = 0;

  const drain = async (): Promise<void> => {
    for (let item = queue.shift(); item; item = queue.shift()) {
      const { event, plan: runPlan } = item;
      const body = JSON.stringify({
        ...event,
        text: eventText(event, host, runPlan),
        host,
        time: new Date().toISOString(),
      });
      await Promise.all(
        urls.map((url) =>
          postWithRetries(url, body, event.type, {
            tries,
            baseDelayMs: options.baseDelayMs ?? 500,
            timeoutMs: options.requestTimeoutMs ?? 10_000,
            signal: cancel.signal,
            logger,
          }),
        ),
      );
    }
    running = null;
  };
  const enqueue = (event: UpgradeEvent) => {
    if (cancel.signal.aborted) return;
    if (queue.length >= maxQueue) {
      queue.shift();
      dropped += 1;
      if (dropped === 1 || dropped % 100 === 0)
        logger.warn({ dropped, maxQueue }, 'webhook queue full; dropping the oldest events');
    }
    queue.push({ event, plan });
    running ??= drain();
  };

  const listener: UpgradeListener = (event) => {
    if (urls.length === 0 || event.type === 'progress') return;
    if (event.type === 'plan') {
      plan = event;
      for (const earlier of held) enqueue(earlier);
      held = [];
    }
    if (quiet && !plan && event.type !== 'result') {
      held.push(event);
      if (held.length > maxQueue) held.shift();
      return;
    }
    if (event.type === 'result') {
      const upToDate = event.result.status === 'up_to_date';
      if (!(quiet && upToDate)) {
        for (const earlier of held) enqueue(earlier);
        enqueue(event);
      }
      held = [];
      plan = undefined;
      return;
    }
    enqueue(event);
  };

  return {
    listener,
    announce: (event) => {
      if (urls.length > 0) enqueue(event);
    },
    async flush(timeoutMs) {
      if (running) {
        const timer = new AbortController();
        // The timer is cancelled once the queue drained first: its AbortError is expected.
        await Promise.race([running, sleep(timeoutMs, undefined, { signal: timer.signal }).catch(() => undefined)]);
        timer.abort();
      }
      if (running) {
        logger.warn({ left: queue.length + 1 }, 'webhooks still pending at exit; cancelled');
        queue.length = 0;
        cancel.abort();
        await running;
      }
    },
  };
}
