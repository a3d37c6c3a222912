import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { refreshMetrics } from '../../metrics/index.js';
import { acquireLock, createWebhookNotifier } from '../../daemon/index.js';
import { ErrorCodes, NuwaxError } from '../../errors/index.js';
import type { UpgradeEvent, UpgradeListener } from '../../events/index.js';
import { ensureFreeSpace, formatBytes } from '../../fsutil/index.js';
import { type BundleHead, importBundle, readBundleHead } from '../../release/index.js';
import type { StrategyDecision } from '../../strategy/index.js';
import { checkForUpdate, exitCodeFor, recoverUnfinished, runUpgrade } from '../../upgrade/index.js';
import { CLIENT_VERSION } from '../client-version.js';
import { action, type CliContext, safeUser } from '../context.js';
import { createJsonRenderer } from '../render/json.js';
import { createPlainRenderer } from '../render/plain.js';
import { createCollaborators } from '../wiring.js';
import { confirmInTerminal } from './confirm.js';

/** Free space kept beyond the packages copied into the cache (as the downloader keeps). */
const SPACE_MARGIN = 32 * 1024 * 1024;

/** `nuwax import FILE` (an offline bundle): verify, copy into the download cache, stage. */
export function registerImport(program: Command): void {
  program
    .command('import')
    .description(
      'stage a release from an offline bundle (`nuwax release bundle`), ' +
        'verified as a download is; `nuwax upgrade` then installs it with no network',
    )
    .argument('<file>', 'the bundle file')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      action(async (context, file: string, flags: { yes?: boolean }) => runImport(context, path.resolve(file), flags)),
    );
}

type Offered = Exclude<StrategyDecision, { strategy: 'none' }>;

/**
 * The packages this box takes from the bundle, keyed by sha256 with the URLs the upgrade will hand
 * the downloader (so the file lands where the downloader looks first). With a patch, the full
 * package comes too when the bundle has it: the upgrade falls back to it if the box's files differ
 * from the patch's base, and offline there is nowhere else to get it.
 */
function packagesToImport(head: BundleHead, decision: Offered, fallback: Offered | null): Map<string, string[]> {
  const inBundle = new Set(head.index.packages.map((item) => item.sha256));
  const wanted = new Map<string, string[]>();
  const sha256 = decision.package.sha256;
  if (!sha256 || !inBundle.has(sha256)) {
    throw new NuwaxError(
      ErrorCodes.E_NO_PACKAGE,
      `The bundle holds no ${decision.strategy} package for ${decision.arch} (${decision.reason})` +
        `; make it with --arch ${decision.arch}`,
    );
  }
  wanted.set(sha256, [decision.package.url, ...decision.package.mirrors]);
  const full = fallback?.package;
  if (full?.sha256 && inBundle.has(full.sha256)) wanted.set(full.sha256, [full.url, ...full.mirrors]);
  return wanted;
}

async function runImport(context: CliContext, file: string, flags: { yes?: boolean }): Promise<number> {
  const info = await stat(file).catch((error: unknown) => {
    throw new NuwaxError(ErrorCodes.E_USAGE, `Cannot read the bundle ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  });
  if (!info.isFile()) throw new NuwaxError(ErrorCodes.E_USAGE, `${file} is not a file`);
  const lock = await acquireLock(context.paths.lockFile, 'nuwax import');
  const controller = new AbortController();
  const write = (line: string) => process.stdout.write(`${line}\n`);
  const render: UpgradeListener = context.json ? createJsonRenderer(write) : createPlainRenderer(write);
  const notifier = createWebhookNotifier(context.config.notify.webhooks, context.logger);
  const onEvent = (event: UpgradeEvent) => {
    render(event);
    notifier.listener(event);
  };
  const onSignal = () => controller.abort(new Error('cancelled by the user'));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const { config, paths, store, logger } = context;
    const collaborators = createCollaborators(context);
    await recoverUnfinished({ config, paths, store, collaborators, logger, onEvent });
    const readOptions = { config, clientVersion: CLIENT_VERSION, signal: controller.signal };
    // The manifest is verified (signature) from the start of the bundle before any package is read.
    const head = await readBundleHead(file, readOptions);
    const check = (forceFull: boolean) =>
      checkForUpdate({ config, paths, store, clientVersion: CLIENT_VERSION, fetched: head.fetched, forceFull });
    const { decision } = await check(false);
    if (decision.strategy !== 'none') {
      const fallback = decision.strategy === 'patch' ? ((await check(true)).decision as Offered) : null;
      const wanted = packagesToImport(head, decision, fallback);
      if (
        !flags.yes &&
        !(await confirmInTerminal(
          `Stage ${decision.offered} (${decision.strategy}) from ${path.basename(file)}? [y/N] `,
        ))
      ) {
        context.print('cancelled: nothing was changed', {
          status: 'failed',
          error: { code: ErrorCodes.E_CANCELLED, message: 'cancelled' },
          changed: false,
        });
        return 1;
      }
      const bytes = head.index.packages
        .filter((item) => wanted.has(item.sha256))
        .reduce((sum, item) => sum + item.size, 0);
      await ensureFreeSpace(paths.downloadsDir, bytes + SPACE_MARGIN, `the packages of ${path.basename(file)}`);
      const started = Date.now();
      const imported = await importBundle(head, {
        ...readOptions,
        directory: paths.downloadsDir,
        wanted,
        onProgress: onEvent,
      });
      const seconds = (Date.now() - started) / 1000;
      onEvent({
        type: 'log',
        level: 'info',
        message:
          `verified ${formatBytes(info.size)} of bundle and copied ${imported.length} package(s), ` +
          `${formatBytes(bytes)}, ` +
          `into the download cache in ${seconds.toFixed(1)} s` +
          `${head.fetched.signed ? '; the manifest signature verified' : ''}`,
      });
    }
    const result = await runUpgrade({
      config,
      paths,
      store,
      collaborators,
      clientVersion: CLIENT_VERSION,
      logger,
      trigger: 'manual',
      startedBy: safeUser(),
      reason: `import of the bundle ${path.basename(file)}`,
      downloadOnly: true,
      fetched: head.fetched,
      signal: controller.signal,
      onEvent,
    });
    await refreshMetrics(context);
    await notifier.flush(5000);
    return exitCodeFor(result);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await lock.release();
  }
}
