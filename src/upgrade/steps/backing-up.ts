import { ErrorCodes, toNuwaxError } from '../../errors/index.js';
import { applyPlanOf, savePlan } from '../plan.js';
import type { UpgradeStep } from '../context.js';
import { stopServices } from './stopping.js';

/**
 * SPEC 8: docker/backup.sh first, while the services still run (the application's own backup, e.g.
 * a database dump; its failure changes nothing); then the services stop and nuwax's own backup of
 * what the upgrade may change plus `[backup] include` is taken.
 */
export const backingUp: UpgradeStep = {
  name: 'backing_up',
  phase: 'switch',
  downtime: true,
  noReturn: false,
  summary:
    'backup.sh (services up), then stop the old version and back up what the upgrade may change ' +
    'and [backup] include (services down)',
  skip: (context) => (context.plan.skipBackup ? 'skipped (--skip-backup)' : undefined),
  async run(context, signal) {
    const { plan, collaborators, store, upgradeId, paths, config } = context;
    const backupPaths = await collaborators.packages.pathsToBackUp({
      plan: applyPlanOf(plan),
      dockerDir: paths.dockerDir,
      stagedRoot: plan.stagedRoot!,
      include: config.backup.include,
    });
    const hookFile = await collaborators.backups.runBackupHook({ signal });
    await stopServices(context, signal);
    const backup = await collaborators.backups.create({
      hookFile,
      paths: backupPaths,
      kind: 'pre-upgrade',
      version: plan.from,
      upgradeId,
      signal,
      onProgress: context.emit,
    });
    plan.backupId = backup.id;
    store.upgrades.update(upgradeId, { backupId: backup.id });
    savePlan(store, upgradeId, plan);
    return undefined;
  },
  async undo(context, undoing) {
    const { plan, collaborators } = context;
    const backupId = plan.backupId;
    if (backupId !== null) {
      let restored = false;
      await undoing.attempt(`restore backup #${backupId}`, async () => {
        await collaborators.backups.restore(backupId, { runHook: false });
        restored = true;
      });
      // restore.sh apart: its failure leaves the application's own data in doubt, not nuwax's files.
      if (restored)
        await collaborators.backups.runRestoreHook(backupId).catch((error: unknown) => {
          const failure = toNuwaxError(error, ErrorCodes.E_RESTORE);
          const details = (failure.details ?? {}) as { file?: unknown; output?: unknown };
          plan.restoreHookFailure = {
            file: typeof details.file === 'string' ? details.file : null,
            message: failure.message,
            output: typeof details.output === 'string' ? details.output : '',
          };
          undoing.problem(`docker/restore.sh: ${failure.code}: ${failure.message}`);
        });
    } else if (plan.applyStarted)
      undoing.problem('no backup was taken (--skip-backup): data/ and migrated state cannot be guaranteed');
  },
};
