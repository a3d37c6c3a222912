import { createDispatcher } from '../../manifest/index.js';
import {
  planRestore,
  previewUpgrade,
  type RestorePlan,
  renderRestorePlan,
  renderUpgradePreview,
} from '../../preview/index.js';
import { CLIENT_VERSION } from '../client-version.js';
import type { CliContext } from '../context.js';

/** `--dry-run` of `backup restore` and `rollback`: the plan, on stdout; nothing is changed, no lock is taken. */
export async function printRestorePlan(
  context: CliContext,
  command: RestorePlan['command'],
  backupId: number | undefined,
): Promise<number> {
  const plan = await planRestore({
    store: context.store,
    paths: context.paths,
    installed: context.store.installedVersion(context.config.versions.docker_service),
    command,
    backupId,
  });
  context.print(renderRestorePlan(plan), plan);
  return plan.disk.enough ? 0 : 1;
}

/** `upgrade --dry-run`: the plan from the step table; the manifest may be fetched, nothing is downloaded or written. */
export async function printUpgradePlan(
  context: CliContext,
  flags: { forceFull?: boolean; skipBackup?: boolean; allowDowngrade?: boolean; ignoreRollout?: boolean },
): Promise<number> {
  const preview = await previewUpgrade({
    config: context.config,
    paths: context.paths,
    store: context.store,
    clientVersion: CLIENT_VERSION,
    logger: context.logger,
    dispatcher: createDispatcher(context.config),
    ...flags,
  });
  context.print(renderUpgradePreview(preview), preview);
  return preview.disk.enough ? 0 : 1;
}
