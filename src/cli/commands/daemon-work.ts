import os from 'node:os';
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
import type { CliContext } from '../context.js';
import { createJsonRenderer } from '../render/json.js';
import { createPlainRenderer } from '../render/plain.js';
import { createCollaborators } from '../wiring.js';
import { selfUpdateContext } from './self-update.js';

export interface DaemonFlags {
  once?: boolean;
  jitter?: boolean;
}

/**
 * Production wiring of the daemon: the upgrade, the offered-version check and recovery (STYLE).
 * `daemonPid` is the daemon's own process, named in each record even when a child runs the cycle.
 */
export function daemonPorts(context: CliContext, daemonPid: number = process.pid): DaemonPorts {
  const { config, paths, store, logger } = context;
  const dispatcher = createDispatcher(config);
  const shared = { config, paths, store, clientVersion: CLIENT_VERSION, logger, dispatcher };
  return {
    upgrade: (request) =>
      runUpgrade({
        ...shared,
        collaborators: createCollaborators(context, { signalRateLimit: request.rateLimit }),
        trigger: 'schedule',
        startedBy: `nuwax daemon (pid ${daemonPid}) on ${os.hostname()}`,
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

/** What runs around each cycle: the output, the webhooks, and what follows it (metrics, reports, client update). */
export interface CycleHooks {
  onEvent: (event: UpgradeEvent) => void;
  /** To the output and the webhooks outside any run (the watch's repairs). */
  announce: (event: UpgradeEvent) => void;
  /** Errors are the caller's to log. Resolves true when nuwax updated itself: the daemon must exit for it. */
  afterCycle: (outcome: CycleOutcome) => Promise<boolean>;
  flush(timeoutMs: number): Promise<void>;
}

export function cycleHooks(context: CliContext, flags: DaemonFlags): CycleHooks {
  const { config, store, logger } = context;
  const write = (line: string) => process.stdout.write(`${line}\n`);
  // journald and cron mails get the plain lines; --json gets one event per line, the result last.
  const render = context.json ? createJsonRenderer(write) : createPlainRenderer(write);
  const notifier = createWebhookNotifier(config.notify.webhooks, logger);
  return {
    onEvent: (event) => {
      render(event);
      notifier.listener(event);
    },
    announce: (event) => {
      render(event);
      notifier.announce(event);
    },
    afterCycle: async (outcome) => {
      await refreshMetrics(context);
      if (outcome.result) await reportOutcome(config, store.kv.get<string>('server:client_id'), outcome.result, logger);
      else if (flags.once) printSkipped(context, outcome);
      // Between cycles, holding the lock: nuwax's own update; a switch ends the daemon for the new client.
      return updateClientFromDaemon(selfUpdateContext(context));
    },
    flush: (timeoutMs) => notifier.flush(timeoutMs),
  };
}

/** `nuwax daemon --once`: one cycle in this process, holding the lock, exiting with the cycle's code. */
export async function runDaemonOnce(context: CliContext, flags: DaemonFlags): Promise<number> {
  const { config, paths, store, logger } = context;
  const hooks = cycleHooks(context, flags);
  let clientSwitched = false;
  const daemon = startDaemon({
    config,
    home: context.home,
    store,
    logger,
    ports: daemonPorts(context),
    onEvent: hooks.onEvent,
    lockFile: paths.lockFile,
    once: true,
    jitter: flags.jitter === true,
    afterCycle: async (outcome) => {
      if (await hooks.afterCycle(outcome)) {
        clientSwitched = true;
        daemon.stop('client update');
      }
    },
  });
  try {
    const code = await daemon.done;
    return clientSwitched ? CLIENT_RESTART_EXIT_CODE : code;
  } finally {
    await hooks.flush(5000);
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
