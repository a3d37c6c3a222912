import path from 'node:path';
import { ensureFreeSpace, exists, formatBytes, treeSize } from '../../fsutil/index.js';
import { prepareState, type StepContext, type UpgradeStep } from '../context.js';
import { savePlan } from '../plan.js';

/** Margin kept free on top of every estimate (the disk budget; doctor keeps the same). */
export const DISK_MARGIN = 256 * 1024 * 1024;

/** docker load while the old version still runs, then the new compose file and its images checked. */
export const loadingImages: UpgradeStep = {
  name: 'loading_images',
  phase: 'prepare',
  downtime: false,
  noReturn: false,
  summary: 'docker load the images (old version still running); validate the new compose file',
  async run(context, signal) {
    const { plan, collaborators, paths } = context;
    const root = plan.stagedRoot!;
    const imagesDir = path.join(root, 'images');
    const imageBytes = await treeSize(imagesDir);
    const backupEstimate = plan.skipBackup ? 0 : await treeSize(paths.dockerDir);
    // docker load needs about twice the archives while it runs.
    await ensureFreeSpace(
      paths.home,
      imageBytes * 2 + backupEstimate + DISK_MARGIN,
      `loading images (${formatBytes(imageBytes)}) and the backup (about ${formatBytes(backupEstimate)})`,
    );
    if (prepareState(context).downloadOnly && !(await collaborators.runtime.available())) {
      context.emit({
        type: 'log',
        level: 'warn',
        message: 'Docker is not reachable: images not loaded; they load at the switch',
      });
      return undefined;
    }
    if (await exists(imagesDir))
      await collaborators.runtime.loadImages(imagesDir, plan.arch, { signal, onProgress: context.emit });
    const stagedCompose = path.join(root, path.basename(paths.composeFile));
    if (await exists(stagedCompose)) {
      // compose v1 takes seconds here: say what the step waits for once the images are in.
      context.emit({
        type: 'log',
        level: 'info',
        step: 'loading_images',
        message: 'Checking the new compose file and that its images exist for this arch',
      });
      await collaborators.runtime.validate(stagedCompose, signal);
      await collaborators.runtime.checkImages(plan.arch, stagedCompose);
    }
    // The services the switch will start, listed while the old version runs: after the stop it is downtime.
    const nextCompose = (await exists(stagedCompose)) ? stagedCompose : paths.composeFile;
    const remember =
      !prepareState(context).downloadOnly && (await exists(nextCompose))
        ? collaborators.runtime.rememberServices(nextCompose, signal)
        : undefined;
    [plan.stopWith] = await Promise.all([stopMode(context, stagedCompose, signal), remember]);
    savePlan(context.store, context.upgradeId, plan);
    return undefined;
  },
};

/**
 * The switch only stops the old containers (`up` restarts the unchanged ones and recreates the
 * rest), unless the release changes the project or its networks, which only `down` applies.
 */
async function stopMode(context: StepContext, stagedCompose: string, signal: AbortSignal): Promise<'stop' | 'down'> {
  let reason: string | null = null;
  if (await exists(stagedCompose)) reason = await context.collaborators.runtime.switchNeedsDown(stagedCompose, signal);
  // A new .env alone may rename networks, and its compose file cannot be read without the live one.
  else if (await exists(path.join(path.dirname(stagedCompose), '.env'))) reason = 'the release replaces .env';
  if (reason === null) return 'stop';
  context.emit({
    type: 'log',
    level: 'info',
    step: 'loading_images',
    message: `The switch removes the old containers (compose down): ${reason}`,
  });
  return 'down';
}
