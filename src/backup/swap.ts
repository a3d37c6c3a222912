import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { exists, fsyncDirectory } from '../fsutil/index.js';

function under(root: string, relative: string): string {
  return path.join(root, ...relative.split('/'));
}

/**
 * Puts every covered path of `staging` in place in `dockerDir` by renames (same filesystem): the
 * current one is moved to `aside` first. A path the archive does not hold (absent at backup time)
 * ends absent. When a rename fails, what was already swapped is put back, newest first, so the
 * current files stay as they were (SPEC 8 rollback relies on this).
 */
export async function swapIn(dockerDir: string, staging: string, aside: string, paths: string[]): Promise<void> {
  const swapped: Array<{ relative: string; hadCurrent: boolean }> = [];
  const touched = new Set<string>();
  try {
    for (const relative of paths) {
      const live = under(dockerDir, relative);
      const restored = under(staging, relative);
      const hadCurrent = await exists(live);
      if (hadCurrent) {
        await mkdir(path.dirname(under(aside, relative)), { recursive: true });
        await rename(live, under(aside, relative));
      }
      swapped.push({ relative, hadCurrent });
      if (await exists(restored)) {
        await mkdir(path.dirname(live), { recursive: true });
        await rename(restored, live);
      }
      touched.add(path.dirname(live));
    }
  } catch (error) {
    for (const { relative, hadCurrent } of swapped.reverse()) {
      const live = under(dockerDir, relative);
      await rm(live, { recursive: true, force: true });
      if (hadCurrent) await rename(under(aside, relative), live);
    }
    throw error;
  }
  // The renames must survive a power loss once the restore is reported done.
  for (const directory of touched) await fsyncDirectory(directory);
}
