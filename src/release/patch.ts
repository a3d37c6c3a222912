import { rm } from 'node:fs/promises';
import path from 'node:path';
import { METADATA_DIR, scanTree } from '../apply/index.js';
import { createTarGz } from '../archive/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import type { ProgressListener } from '../events/index.js';
import { diffTrees } from './diff.js';
import { checkDirectory, checkReleaseArguments, type PackageSidecar, writeSidecar } from './pack.js';
import { packRoot, type ThinImageReport, thinImageArchives } from './thin-images.js';

export interface PatchReleaseOptions {
  oldDir: string;
  newDir: string;
  from: string;
  to: string;
  arch: string;
  output: string;
  level?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Told what became of each changed image archive (thin or whole). */
  onImage?: (report: ThinImageReport) => void;
}

/**
 * `release patch` (SPEC 4, 5): compares two deployment folders by content hash and packs only
 * what changed or was added, with `.nuwax/patch.json` `{ from, to, operations, base }` inside (the
 * base lets a box detect files edited by hand) and the sidecar beside it. A changed image archive
 * goes in thin (only the layers the old release lacks) when the old release has image archives.
 */
export async function patchRelease(options: PatchReleaseOptions): Promise<PackageSidecar> {
  checkReleaseArguments([options.from, options.to], options.arch);
  const oldDir = path.resolve(options.oldDir);
  const newDir = path.resolve(options.newDir);
  const output = path.resolve(options.output);
  await checkDirectory(oldDir, 'The old deployment folder');
  await checkDirectory(newDir, 'The new deployment folder');
  if (output.startsWith(newDir + path.sep))
    throw new NuwaxError(ErrorCodes.E_USAGE, `The package ${output} would be written inside ${newDir}`);
  const scan = options.signal ? { signal: options.signal } : {};
  const [oldTree, newTree] = await Promise.all([scanTree(oldDir, scan), scanTree(newDir, scan)]);
  for (const tree of [oldTree, newTree]) {
    if (tree.has(METADATA_DIR))
      throw new NuwaxError(
        ErrorCodes.E_USAGE,
        `A deployment folder must not hold ${METADATA_DIR}/: the name is reserved for package metadata`,
      );
  }
  // A package holds files, directories and symlinks only; a fifo or a socket would vanish from it.
  const special = [...newTree].find(([, entry]) => entry.kind === 'other');
  if (special)
    throw new NuwaxError(
      ErrorCodes.E_USAGE,
      `${path.join(newDir, special[0])} is neither a file, a directory nor a symlink`,
    );
  const diff = diffTrees(oldTree, newTree);
  const { operations, base } = diff;
  const scratch = `${output}.images`;
  try {
    const images = await thinImageArchives(oldDir, newDir, oldTree, diff, scratch, options.signal);
    let root = newDir;
    if (images.thinFiles.size > 0) {
      root = path.join(scratch, 'root');
      await packRoot(newDir, newTree, diff, images.thinFiles, root);
    }
    const patchInfo = { from: options.from, to: options.to, operations, base };
    const created = await createTarGz(root, [...operations.replace.directories, ...operations.replace.files], output, {
      step: 'staging',
      extraEntries: [
        { name: `${METADATA_DIR}/patch.json`, content: Buffer.from(`${JSON.stringify(patchInfo, null, 2)}\n`) },
      ],
      level: options.level,
      signal: options.signal,
      onProgress: options.onProgress,
    });
    const sidecar = sidecarOf(options, options.arch, operations, created);
    await writeSidecar(output, sidecar);
    for (const report of images.reports) options.onImage?.(report);
    return sidecar;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function sidecarOf(
  options: PatchReleaseOptions,
  arch: PackageSidecar['arch'],
  operations: PackageSidecar['operations'],
  created: { size: number; sha256: string },
): PackageSidecar {
  return {
    kind: 'patch',
    version: options.to,
    arch,
    from: [options.from],
    operations,
    size: created.size,
    sha256: created.sha256,
  };
}
