import { rm } from 'node:fs/promises';
import type { UpgradeStep } from '../context.js';
import { forgetStaged, sweepStaging } from '../staged.js';

/** After the commit: nothing here may fail the upgrade; problems are logged. */
export const cleaningUp: UpgradeStep = {
  name: 'cleaning_up',
  phase: 'commit',
  downtime: false,
  noReturn: true,
  mayFail: true,
  summary: 'discard the undo journal and the extraction, forget the staged release, prune backups',
  async run(context) {
    const { plan, collaborators, store, logger } = context;
    const tidy = async (what: string, work: () => Promise<void>) => {
      try {
        await work();
      } catch (error) {
        logger.warn({ err: error, what }, 'clean-up step failed; the upgrade is committed');
      }
    };
    await tidy('discard undo', () => collaborators.packages.discardUndo(plan.undoDir));
    await tidy('remove staging', () => rm(plan.stagingDir, { recursive: true, force: true }));
    // Installed: a staged release (this one, or an older one) is needed no more.
    forgetStaged(store);
    await sweepStaging(context.paths.stagingDir, null, logger);
    const backupId = plan.backupId;
    if (backupId !== null) await tidy('prune backups', () => collaborators.backups.prune({ keepIds: [backupId] }));
    return undefined;
  },
};
