import { applyPlanOf, savePlan } from '../plan.js';
import type { UpgradeStep } from '../context.js';
import { stopServices } from './stopping.js';

/** nuwax's own backup of what the upgrade may change plus `[backup] include`, services stopped (SPEC 8). */
export const backingUp: UpgradeStep = {
  name: 'backing_up',
  phase: 'switch',
  downtime: true,
  noReturn: false,
  summary: 'stop the old version, back up what the upgrade may change and [backup] include (services down)',
  skip: (context) => (context.plan.skipBackup ? 'skipped (--skip-backup)' : undefined),
  async run(context, signal) {
    const { plan, collaborators, store, upgradeId, paths, config } = context;
    const backupPaths = await collaborators.packages.pathsToBackUp({
      plan: applyPlanOf(plan),
      dockerDir: paths.dockerDir,
      stagedRoot: plan.stagedRoot!,
      include: config.backup.include,
    });
    await stopServices(context, signal);
    const backup = await collaborators.backups.create({
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
    if (backupId !== null)
      await undoing.attempt(`restore backup #${backupId}`, () => collaborators.backups.restore(backupId, {}));
    else if (plan.applyStarted)
      undoing.problem('no backup was taken (--skip-backup): data/ and migrated state cannot be guaranteed');
  },
};
