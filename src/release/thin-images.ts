import { copyFile, cp, link, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { TreeEntry } from '../apply/index.js';
import { makeThinArchive } from '../images/index.js';
import type { TreeDiff } from './diff.js';

/** What `release patch` did with one changed image archive. */
export interface ThinImageReport {
  file: string;
  /** true: only the layers the old release lacks are shipped; false: shipped whole. */
  thin: boolean;
  fullSize: number;
  shippedSize: number;
}

const IMAGE_ARCHIVE = /^images\/[^/]+\.tar$/;

/**
 * Makes a thin archive (see src/images) for every image archive the patch replaces, from the old
 * release's image archives, into `scratch`.
 */
export async function thinImageArchives(
  oldDir: string,
  newDir: string,
  oldTree: Map<string, TreeEntry>,
  diff: TreeDiff,
  scratch: string,
  signal?: AbortSignal,
): Promise<{ reports: ThinImageReport[]; thinFiles: Map<string, string> }> {
  const olds = [...oldTree]
    .filter(([relative, entry]) => entry.kind === 'file' && IMAGE_ARCHIVE.test(relative))
    .map(([relative]) => ({ file: path.join(oldDir, relative), relative }));
  const reports: ThinImageReport[] = [];
  const thinFiles = new Map<string, string>();
  if (olds.length === 0) return { reports, thinFiles };
  for (const relative of diff.operations.replace.files.filter((file) => IMAGE_ARCHIVE.test(file))) {
    const output = path.join(scratch, relative);
    await mkdir(path.dirname(output), { recursive: true });
    const made = await makeThinArchive(path.join(newDir, relative), olds, output, { signal });
    reports.push({ file: relative, thin: made.thin, fullSize: made.fullSize, shippedSize: made.thinSize });
    if (!made.thin) continue;
    thinFiles.set(relative, output);
  }
  // The box checks image archives by the layers it takes from them, which it may take from the
  // running images instead when an archive is gone; their file digests would refuse that.
  if (thinFiles.size > 0)
    for (const relative of Object.keys(diff.base)) if (IMAGE_ARCHIVE.test(relative)) delete diff.base[relative];
  return { reports, thinFiles };
}

/** A hard link when it can (same filesystem), else a copy: the pack root must not cost a second copy. */
async function linkOrCopy(source: string, target: string): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true });
  await link(source, target).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EXDEV' && error.code !== 'EPERM') throw error;
    return copyFile(source, target);
  });
}

/**
 * The folder the patch is packed from when some image archives are thin: the new release's replaced
 * paths, with the thin archives in place of the full ones (same names, so the patch's operations
 * do not change).
 */
export async function packRoot(
  newDir: string,
  newTree: Map<string, TreeEntry>,
  diff: TreeDiff,
  thinFiles: Map<string, string>,
  root: string,
): Promise<void> {
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  for (const directory of diff.operations.replace.directories)
    await cp(path.join(newDir, directory), path.join(root, directory), {
      recursive: true,
      verbatimSymlinks: true,
      preserveTimestamps: true,
    });
  for (const relative of diff.operations.replace.files) {
    const target = path.join(root, relative);
    const thin = thinFiles.get(relative);
    if (thin) {
      await linkOrCopy(thin, target);
      continue;
    }
    const entry = newTree.get(relative);
    if (entry?.kind === 'file') await linkOrCopy(path.join(newDir, relative), target);
    else await cp(path.join(newDir, relative), target, { verbatimSymlinks: true, preserveTimestamps: true });
  }
}
