import { readdir } from 'node:fs/promises';
import { isWithin, ProtectedPaths } from './protected.js';
import { type ApplyPlan, METADATA_DIR, type PatchOperations } from './types.js';
import { normaliseOperations } from './validate.js';

/** Keeps each path once and drops those inside another path of the list. */
function outermostSorted(paths: Iterable<string>): string[] {
  const sorted = [...new Set(paths)].sort();
  return sorted.filter((candidate) => !sorted.some((other) => other !== candidate && isWithin(candidate, other)));
}

/**
 * What the upgrade must back up before applying (SPEC 8): for a patch the operation paths, for a
 * full package every entry of docker/ and of the package; never a protected path (those are not
 * changed; `[backup] include` covers data). Pure: the callers list the folders.
 */
export function pathsToBackUp(options: {
  kind: 'full' | 'patch';
  operations?: PatchOperations;
  dockerEntries: string[];
  stagedEntries: string[];
  protectedPaths: string[];
}): string[] {
  const protectedPaths = new ProtectedPaths(options.protectedPaths);
  let candidates: string[];
  if (options.kind === 'patch') {
    const operations = normaliseOperations(
      options.operations ?? { replace: { files: [], directories: [] }, delete: { files: [], directories: [] } },
    );
    candidates = [
      ...operations.delete.directories,
      ...operations.delete.files,
      ...operations.replace.directories,
      ...operations.replace.files,
    ];
  } else {
    candidates = [...options.dockerEntries, ...options.stagedEntries.filter((entry) => entry !== METADATA_DIR)];
  }
  return outermostSorted(candidates.filter((entry) => !protectedPaths.covers(entry)));
}

async function entriesOf(directory: string): Promise<string[]> {
  try {
    return await readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** The upgrade's port (src/upgrade/ports.ts): paths to back up plus `[backup] include`, relative to docker/. */
export async function backupPathsFor(options: {
  plan: ApplyPlan;
  dockerDir: string;
  stagedRoot: string;
  include: string[];
}): Promise<string[]> {
  const changed = pathsToBackUp({
    kind: options.plan.kind,
    operations: options.plan.operations,
    dockerEntries: options.plan.kind === 'full' ? await entriesOf(options.dockerDir) : [],
    stagedEntries: options.plan.kind === 'full' ? await entriesOf(options.stagedRoot) : [],
    protectedPaths: options.plan.protectedPaths,
  });
  return outermostSorted([...changed, ...options.include]);
}
