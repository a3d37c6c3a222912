import type { Command } from 'commander';
import { refreshMetrics } from '../../metrics/index.js';
import { acquireLock, createWebhookNotifier } from '../../daemon/index.js';
import { isSwitchStep, type UpgradeEvent, type UpgradeListener } from '../../events/index.js';
import { createDispatcher } from '../../manifest/index.js';
import { exitCodeFor, reportOutcome, runUpgrade, type UpgradeResult } from '../../upgrade/index.js';
import { CLIENT_VERSION } from '../client-version.js';
import { action, type CliContext, safeUser } from '../context.js';
import { createJsonRenderer } from '../render/json.js';
import { createPlainRenderer } from '../render/plain.js';
import { printUpgradePlan } from './plan.js';
import { createCollaborators } from '../wiring.js';

interface UpgradeFlags {
  downloadOnly?: boolean;
  forceFull?: boolean;
  skipBackup?: boolean;
  allowDowngrade?: boolean;
  ignoreRollout?: boolean;
  yes?: boolean;
}

/** Steps from which Ctrl-C no longer aborts: the switch finishes or rolls back (SPEC 10, 11). */

export function isInteractive(): boolean {
  return Boolean(process.stdout.isTTY && process.stdin.isTTY);
}

export function registerUpgrade(program: Command): void {
  program
    .command('upgrade')
    .description('upgrade the deployment to the offered release (rolls back on any failure)')
    .option('--download-only', 'download, verify, stage and load images, then stop (pre-staging)')
    .option('--force-full', 'install the full package even when a patch applies')
    .option('--skip-backup', 'do not take a backup first (a failure then cannot be fully recovered)')
    .option('--allow-downgrade', 'accept a version lower than the installed one')
    .option('--ignore-rollout', 'take the release even when its staged rollout has not reached this box yet')
    .option('-y, --yes', 'do not ask for confirmation before the switch')
    .option('--dry-run', 'print the plan (steps, files, scripts, images, disk, past downtime); change nothing')
    .action(
      action(async (context, flags: UpgradeFlags & { dryRun?: boolean }) =>
        flags.dryRun ? printUpgradePlan(context, flags) : runUpgradeCommand(context, flags),
      ),
    );
}

export async function runUpgradeCommand(context: CliContext, flags: UpgradeFlags): Promise<number> {
  const lock = await acquireLock(
    context.paths.lockFile,
    `nuwax upgrade${flags.downloadOnly ? ' --download-only' : ''}`,
  );
  const controller = new AbortController();
  let switching = false;
  const interactive = !context.json && isInteractive();
  // Loaded lazily: only a terminal pays for ink and React; --json and plain runs start faster.
  const app = interactive
    ? await (await import('../../tui/index.js')).renderUpgradeTui({
        confirm: !flags.yes && !flags.downloadOnly,
        onCancel: () => cancel(),
      })
    : undefined;
  // Warnings already reach the TUI as log events; pino lines on stderr would tear its frames.
  if (app) context.logger.level = 'error';
  const render: UpgradeListener = context.json
    ? createJsonRenderer((line) => process.stdout.write(`${line}\n`))
    : (app?.listener ?? createPlainRenderer((line) => process.stdout.write(`${line}\n`)));
  const notifier = createWebhookNotifier(context.config.notify.webhooks, context.logger);
  const onEvent = (event: UpgradeEvent) => {
    if (event.type === 'step' && isSwitchStep(event.step) && event.status === 'running') switching = true;
    render(event);
    notifier.listener(event);
  };
  function cancel(): void {
    if (switching) {
      // The TUI says so itself; plain and --json runs get one line on stderr.
      if (!app) process.stderr.write('nuwax: the switch is in progress; it will finish or roll back, then exit\n');
      return;
    }
    controller.abort(new Error('cancelled by the user'));
  }
  const onSignal = () => (app ? app.cancel() : cancel());
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result: UpgradeResult;
  try {
    const dispatcher = createDispatcher(context.config);
    result = await runUpgrade({
      config: context.config,
      paths: context.paths,
      store: context.store,
      collaborators: createCollaborators(context, { signalRateLimit: context.config.download.rate_limit }),
      clientVersion: CLIENT_VERSION,
      logger: context.logger,
      trigger: 'manual',
      startedBy: safeUser(),
      reason: flags.downloadOnly ? 'pre-stage from the command line' : 'upgrade from the command line',
      downloadOnly: flags.downloadOnly ?? false,
      forceFull: flags.forceFull ?? false,
      skipBackup: flags.skipBackup ?? false,
      allowDowngrade: flags.allowDowngrade ?? false,
      ignoreRollout: flags.ignoreRollout ?? false,
      signal: controller.signal,
      onEvent,
      dispatcher,
      confirm: app && !flags.yes && !flags.downloadOnly ? app.confirm : undefined,
    });
  } catch (error) {
    app?.unmount();
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await lock.release();
  }
  await app?.waitUntilExit();
  app?.unmount();
  await reportOutcome(context.config, context.store.kv.get<string>('server:client_id'), result, context.logger);
  await refreshMetrics(context);
  await notifier.flush(5000);
  return exitCodeFor(result);
}
