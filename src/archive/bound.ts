import { stat } from 'node:fs/promises';
import { formatBytes, freeBytes } from '../fsutil/index.js';

/** Images compress about 10x at most and text a little better: 20x is past any real package. */
export const DEFAULT_MAX_RATIO = 20;
/** Small packages (a patch of a few text files) may expand far more than 20x; below this, no ratio applies. */
export const RATIO_FLOOR_BYTES = 16 * 1024 * 1024;
/** What the disk budget keeps free on top of every estimate (the upgrade's own margin). */
export const DEFAULT_RESERVE_BYTES = 256 * 1024 * 1024;
/** The old fixed bounds, kept as a ceiling when nothing else is set. */
const DEFAULT_MAX_TOTAL = 64 * 1024 ** 3;

export interface BoundOptions {
  /** Most bytes an extraction may write per byte of the archive file (null: no ratio bound). */
  maxRatio?: number | null;
  /** A bound on all entries together (default 64 GiB). */
  maxTotalBytes?: number;
  /** Bytes of the destination's free space that an extraction never takes (default 256 MiB). */
  reserveBytes?: number;
}

/** The bound on what one extraction may write, and the words that name it in an error. */
export interface ExtractionBound {
  bytes: number;
  describe: string;
}

/**
 * The smallest of: the configured total, the ratio against the archive's size, and the free space
 * of the destination minus the reserve. Decided once, before the first entry.
 */
export async function extractionBound(
  file: string,
  destination: string,
  options: BoundOptions,
): Promise<ExtractionBound> {
  const bounds: ExtractionBound[] = [];
  const total = options.maxTotalBytes ?? DEFAULT_MAX_TOTAL;
  bounds.push({ bytes: total, describe: `the ${formatBytes(total)} bound on an extraction` });
  const ratio = options.maxRatio === undefined ? DEFAULT_MAX_RATIO : options.maxRatio;
  if (ratio !== null) {
    const compressed = (await stat(file)).size;
    const byRatio = Math.max(RATIO_FLOOR_BYTES, Math.ceil(compressed * ratio));
    bounds.push({
      bytes: byRatio,
      describe: `${formatBytes(byRatio)} (${ratio}x the ${formatBytes(compressed)} archive)`,
    });
  }
  const reserve = options.reserveBytes ?? DEFAULT_RESERVE_BYTES;
  const free = await freeBytes(destination);
  bounds.push({
    bytes: Math.max(0, free - reserve),
    describe: `the free space (${formatBytes(free)}) minus the ${formatBytes(reserve)} the disk keeps in reserve`,
  });
  return bounds.reduce((smallest, bound) => (bound.bytes < smallest.bytes ? bound : smallest));
}
