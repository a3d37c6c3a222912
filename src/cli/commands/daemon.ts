import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import cron from 'node-cron';
import { acquireLock, createWebhookNotifier, cyclesToSkip, jitterDelayMs, planCycle } from '../../daemon/index.js';
import type { StepName } from '../../events/index.js';
import { createDispatcher } from '../../manifest/index.js';
import { exitCodeFor, reportOutcome, runUpgrade, type UpgradeResult } from '../../upgrade/index.js';
import { CLIENT_VERSION } from '../client-version.js';
import { action, type CliContext } from '../context.js';
import { createJsonRenderer } from '../render/json.js';
import { createPlainRenderer } from '../render/plain.js';
import { createCollaborators } from '../wiring.js';

const SWITCH_STEPS = new Set<StepName>(['backing_up', 'stopping', 'applying', 'migrating', 'starting', 'health_check', 'committing', 'cleaning_up', 'rolling_back']);

/** `nuwax daemon [--once]` (SPEC 10): scheduled, windowed, one instance per home, SIGTERM-safe. */
export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description('check on a schedule; upgrade inside the maintenance window, pre-stage outside it')
    .option('--once', 'run one cycle now and exit (for system cron and tests)')
    .action(action(async (context, options: { once?: boolean }) => runDaemon(context, options.once ?? false)));
}

async function runDaemon(context: CliContext, once: boolean): Promise<number> {
  const { config, paths, store, logger } = context;
  const lock = await acquireLock(paths.lockFile, once ? 'nuwax daemon --once' : 'nuwax daemon');
  const notifier = createWebhookNotifier(config.notify.webhooks, logger);
  const write = (line: string) => process.stdout.write(`${line}\n`);
  const render = context.json ? createJsonRenderer(write) : createPlainRenderer(write);
  let current: { controller: AbortController; switching: boolean } | null = null;
  let stopping = false;
  let failures = 0;
  let skip = 0;
  const stop = () => {
    stopping = true;
    // A download stops at once (it resumes next time); a switch finishes or rolls back first.
    if (current && !current.switching) current.controller.abort(new Error('daemon stopping'));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  const cycle = async (): Promise<UpgradeResult> => {
    const plan = planCycle({ now: new Date(), window: config.schedule.window, autoApply: config.schedule.auto_apply, updatesLockPresent: existsSync(path.resolve(context.home, config.schedule.updates_lock)) });
    if (plan.waitingOnLock) store.kv.set('daemon:waiting', { reason: plan.reason, since: new Date().toISOString() });
    else store.kv.delete('daemon:waiting');
    logger.info({ action: plan.action, reason: plan.reason }, 'daemon cycle');
    const controller = new AbortController();
    current = { controller, switching: false };
    const state = current;
    const inside = plan.action === 'upgrade';
    const rateLimit = inside ? config.download.rate_limit : (config.schedule.rate_limit_outside_window ?? config.download.rate_limit);
    const dispatcher = createDispatcher(config);
    const result = await runUpgrade({
      config,
      paths,
      store,
      collaborators: createCollaborators(context, { signalRateLimit: rateLimit }),
      clientVersion: CLIENT_VERSION,
      logger,
      trigger: 'schedule',
      startedBy: `daemon on ${os.hostname()}`,
      reason: plan.reason,
      downloadOnly: !inside,
      signal: controller.signal,
      ...(dispatcher ? { dispatcher } : {}),
      onEvent: (event) => {
        if (event.type === 'step' && SWITCH_STEPS.has(event.step)) state.switching = true;
        render(event);
        notifier.listener(event);
      },
    });
    current = null;
    const code = result.status === 'failed' ? result.error.code : '';
    failures = code === 'E_NETWORK' || code === 'E_HTTP' ? failures + 1 : 0;
    skip = cyclesToSkip(failures);
    await reportOutcome(config, store.kv.get<string>('server:client_id'), result, logger);
    return result;
  };

  try {
    if (once) return exitCodeFor(await cycle());
    let busy = false;
    const task = cron.schedule(config.schedule.check, async () => {
      if (busy || stopping) return;
      if (skip > 0) {
        skip -= 1;
        logger.info({ failures, skipLeft: skip }, 'backing off after server failures');
        return;
      }
      busy = true;
      try {
        await sleep(jitterDelayMs(config.schedule.jitter));
        if (!stopping) await cycle();
      } catch (error) {
        logger.error({ err: error }, 'daemon cycle failed');
      } finally {
        busy = false;
      }
    });
    logger.info({ schedule: config.schedule.check }, 'daemon started');
    while (!stopping || busy) await sleep(500);
    await task.stop();
    return 0;
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    await notifier.flush(5000);
    await lock.release();
  }
}
