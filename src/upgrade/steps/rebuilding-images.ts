import path from 'node:path';
import { ErrorCodes, NuwaxError } from '../../errors/index.js';
import { formatBytes } from '../../fsutil/index.js';
import { rebuildThinImages } from '../../images/index.js';
import type { UpgradeStep } from '../context.js';
import { fullPackageInstead } from './staging.js';

/**
 * A patch carries changed image archives thin (only the layers the old release lacks): they are
 * rebuilt in place into the full `docker save` archives from the layers the box has, before they
 * are loaded. A layer the box lacks is a base mismatch like a file edited by hand: the loop goes
 * back to download the full package.
 */
export const rebuildingImages: UpgradeStep = {
  name: 'rebuilding_images',
  phase: 'prepare',
  downtime: false,
  noReturn: false,
  summary: "rebuild a patch's thin image archives from the layers on the box (or fall back to the full package)",
  skip: (context) => (context.plan.strategy === 'patch' ? undefined : 'skipped (not a patch)'),
  async run(context, signal) {
    const imagesDir = path.join(context.plan.stagedRoot!, 'images');
    try {
      const result = await rebuildThinImages(imagesDir, context.paths.dockerDir, { signal });
      if (result.rebuilt.length > 0)
        context.emit({
          type: 'log',
          level: 'info',
          step: 'rebuilding_images',
          message:
            `Rebuilt ${result.rebuilt.join(', ')} with ${formatBytes(result.reusedBytes)} ` +
            'of layers taken from the box',
        });
      return undefined;
    } catch (error) {
      if (error instanceof NuwaxError && error.code === ErrorCodes.E_BASE_MISMATCH)
        return fullPackageInstead(context, error.message);
      throw error;
    }
  },
};
