import os from 'node:os';
import type { Command } from 'commander';
import { refreshMetrics } from '../../metrics/index.js';
import {
  type CycleOutcome,
  createWebhookNotifier,
  type DaemonPorts,
  startDaemon,
  type WaitingRecord,
} from '../../daemon/index.js';
import type { UpgradeEvent } from '../../events/index.js';
import { createDispatcher } from '../../manifest/index.js';
import { CLIENT_RESTART_EXIT_CODE, recoverClientUpdate, updateClientFromDaemon } from '../../selfupdate/index.js';
import { checkForUpdate, recoverUnfinished, reportOutcome, runUpgrade } from '../../upgrade/index.js';
import { CLIENT_VERSION } from '../client-version.js';
import { action, type CliContext } from '../context.js';
import { createJsonRenderer } from '../render/json.js';
import { createPlainRenderer } from '../render/plain.js';
import { createCollaborators } from '../wiring.js';
import { selfUpdateContext } from './self-update.js';
import { watchOptions } from './watch.js';

interface DaemonFlags {
  once?: boolean;
  jitter?: boolean;
}

/** `nuwax daemon [--once]` (SPEC 10): scheduled, windowed, one instance per home, SIGTERM-safe. */
export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description('check on a schedule; upgrade inside the maintenance window, pre-stage outside it')
    .option('--once', 'run one cycle and exit with its result (for system cron and tests)')
    .option(
      '--jitter',
      'with --once: wait the random [schedule] jitter first, as the daemon does (use it from system cron)',
    )
    .action(action(async (context, flags: DaemonFlags) => runDaemonCommand(context, flags)));
}

/** Production wiring of the daemon: the upgrade, the offered-version check and recovery (STYLE). */
function daemonPorts(context: CliContext): DaemonPorts {
  const { config, paths, store, logger } = context;
  const dispatcher = createDispatcher(config);
  const shared = { config, paths, store, clientVersion: CLIENT_VERSION, logger, dispatcher };
  return {
    upgrade: (request) =>
      runUpgrade({
        ...shared,
        collaborators: createCollaborators(context, { signalRateLimit: request.rateLimit }),
        trigger: 'schedule',
        startedBy: `nuwax daemon (pid ${process.pid}) on ${os.hostname()}`,
        reason: request.reason,
        downloadOnly: request.downloadOnly,
        signal: request.signal,
        onEvent: request.onEvent,
      }),
    offered: async (signal) => {
      const { decision } = await checkForUpdate({ ...shared, signal });
      return decision.strategy === 'none' ? null : decision.offered;
    },
    recover: async (onEvent) => {
      // A client switched to at the last stop confirms here that it starts (or the previous one puts itself back).
      await recoverClientUpdate(selfUpdateContext(context)).catch((error: unknown) =>
        logger.warn({ err: error }, 'daemon: recovery of a client update failed'),
      );
      return recoverUnfinished({ config, paths, store, collaborators: createCollaborators(context), logger, onEvent });
    },
  };
}

export async function runDaemonCommand(context: CliContext, flags: DaemonFlags): Promise<number> {
  const { config, paths, store, logger } = context;
  const write = (line: string) => process.stdout.write(`${line}\n`);
  // journald and cron mails get the plain lines; --json gets one event per line, the result last.
  const render = context.json ? createJsonRenderer(write) : createPlainRenderer(write);
  const notifier = createWebhookNotifier(config.notify.webhooks, logger);
  const onEvent = (event: UpgradeEvent) => {
    render(event);
    notifier.listener(event);
  };
  let clientSwitched = false;
  const afterCycle = async (outcome: CycleOutcome) => {
    await refreshMetrics(context);
    if (outcome.result) await reportOutcome(config, store.kv.get<string>('server:client_id'), outcome.result, logger);
    else if (flags.once) printSkipped(context, outcome);
    // Between cycles, holding the lock: nuwax's own update; a switch ends this process for the new client.
    if (await updateClientFromDaemon(selfUpdateContext(context))) {
      clientSwitched = true;
      daemon.stop('client update');
    }
  };
  const daemon = startDaemon({
    config,
    home: context.home,
    store,
    logger,
    ports: daemonPorts(context),
    onEvent,
    lockFile: paths.lockFile,
    once: flags.once ?? false,
    jitter: !flags.once || flags.jitter === true,
    afterCycle,
    watch: watchOptions(context, (event) => {
      render(event);
      notifier.announce(event);
    }),
  });
  try {
    const code = await daemon.done;
    return clientSwitched ? CLIENT_RESTART_EXIT_CODE : code;
  } finally {
    await notifier.flush(5000);
  }
}

/** `--once` always ends with one result line, also when the cycle had nothing to run. */
function printSkipped(context: CliContext, outcome: CycleOutcome): void {
  const waiting = context.store.kv.get<WaitingRecord>('daemon:waiting');
  if (outcome.skipped === 'already_staged' && waiting) {
    // SPEC 8's `staged`: the release is ready; this cycle only confirmed the server offers it still.
    context.print(`result: staged - ${waiting.reason} (staged earlier)`, {
      status: 'staged',
      version: waiting.version,
      already: true,
      waiting,
    });
    return;
  }
  const because = {
    already_staged: 'the offered release is already staged',
    backoff: 'backing off after server failures',
    stopping: 'stopped before the cycle started',
    busy: 'the previous cycle still runs',
  }[outcome.skipped ?? 'stopping'];
  context.print(`result: skipped - ${because}`, { status: 'skipped', reason: outcome.skipped, detail: because });
}
