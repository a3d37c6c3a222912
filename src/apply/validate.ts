import { lstat } from 'node:fs/promises';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { checkRelativePath, whenAbsent } from '../fsutil/index.js';
import { ProtectedPaths } from './protected.js';
import { KindCache } from './tree.js';
import { type ApplyPlan, METADATA_DIR, type PatchOperations } from './types.js';

/** Checks the paths of a patch (SPEC 4: relative, no `..`, no drive letter, no NUL) and normalises them. */
export function normaliseOperations(operations: PatchOperations): PatchOperations {
  const group = (paths: string[], what: string): string[] =>
    paths.map((entry) => {
      const clean = checkRelativePath(entry, `${what} path`);
      if (clean === METADATA_DIR || clean.startsWith(`${METADATA_DIR}/`)) {
        throw new NuwaxError(
          ErrorCodes.E_UNSAFE_PATH,
          `The ${what} path "${entry}" names the package metadata folder ${METADATA_DIR}/`,
          { details: { path: entry } },
        );
      }
      return clean;
    });
  return {
    replace: {
      files: group(operations.replace.files, 'replace'),
      directories: group(operations.replace.directories, 'replace'),
    },
    delete: {
      files: group(operations.delete.files, 'delete'),
      directories: group(operations.delete.directories, 'delete'),
    },
  };
}

/**
 * Validates the whole plan against the staged package before anything changes (SPEC 5): every
 * path is safe, every path to replace is in the package with the right kind.
 */
export async function validatePlan(stagedRoot: string, plan: ApplyPlan): Promise<void> {
  new ProtectedPaths(plan.protectedPaths);
  const root = await lstat(stagedRoot).catch(whenAbsent(null, 'ENOTDIR'));
  if (!root?.isDirectory())
    throw new NuwaxError(ErrorCodes.E_APPLY, `The staged package ${stagedRoot} is not a directory`);
  if (plan.kind === 'full') return;
  if (!plan.operations) throw new NuwaxError(ErrorCodes.E_APPLY, 'A patch apply needs its operations');
  const operations = normaliseOperations(plan.operations);
  const problems: string[] = [];
  const staged = new KindCache(stagedRoot);
  for (const file of operations.replace.files) {
    const kind = await staged.kindThroughDirectories(file);
    if (kind === 'none') problems.push(`${file} (missing)`);
    else if (kind === 'directory' || kind === 'other') problems.push(`${file} (a ${kind}, expected a file)`);
  }
  for (const directory of operations.replace.directories) {
    const kind = await staged.kindThroughDirectories(directory);
    if (kind !== 'directory')
      problems.push(`${directory}/ (${kind === 'none' ? 'missing' : `a ${kind}, expected a directory`})`);
  }
  if (problems.length > 0) {
    throw new NuwaxError(
      ErrorCodes.E_APPLY,
      `The patch names paths the package does not hold: ` +
        `${problems.slice(0, 10).join(', ')}${problems.length > 10 ? ', …' : ''}`,
      {
        details: { problems },
      },
    );
  }
}
