import type { PatchOperations, TreeEntry } from '../apply/index.js';

export interface TreeDiff {
  operations: PatchOperations;
  /** sha256 in the old tree of every file the patch replaces or deletes; null: it did not exist. */
  base: Record<string, string | null>;
}

function isUnder(relative: string, ancestors: string[]): boolean {
  return ancestors.some((ancestor) => relative.startsWith(`${ancestor}/`));
}

/** Same content, same kind, same permission bits (a script made executable is a change). */
function sameEntry(a: TreeEntry, b: TreeEntry): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'symlink') return a.target === b.target;
  return a.digest === b.digest && a.mode === b.mode;
}

/** Base entries for a path: its own digest, every file under it for a directory, null when absent. */
function baseOf(old: Map<string, TreeEntry>, relative: string, base: Record<string, string | null>): void {
  const entry = old.get(relative);
  if (!entry) {
    base[relative] = null;
    return;
  }
  if (entry.kind !== 'directory') {
    base[relative] = entry.digest ?? null;
    return;
  }
  for (const [path, inner] of old) {
    if (path.startsWith(`${relative}/`) && inner.kind !== 'directory') base[path] = inner.digest ?? null;
  }
}

/**
 * Compares two trees by content (SPEC 4 operations): a directory new as a whole is a directory
 * replace, one gone as a whole a directory delete; any other added or changed entry is a file
 * replace, any other removed one a file delete. Applying the result to OLD gives NEW.
 */
export function diffTrees(old: Map<string, TreeEntry>, next: Map<string, TreeEntry>): TreeDiff {
  const operations: PatchOperations = {
    replace: { files: [], directories: [] },
    delete: { files: [], directories: [] },
  };
  const replacedDirectories = operations.replace.directories;
  for (const [relative, entry] of [...next].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (isUnder(relative, replacedDirectories)) continue;
    const before = old.get(relative);
    if (entry.kind === 'directory') {
      if (before?.kind !== 'directory') replacedDirectories.push(relative);
    } else if (!before || !sameEntry(before, entry)) {
      operations.replace.files.push(relative);
    }
  }
  // Old directories that are gone or became something else: their content goes with them.
  const goneDirectories: string[] = [];
  for (const [relative, entry] of [...old].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (isUnder(relative, goneDirectories)) continue;
    const after = next.get(relative);
    if (entry.kind === 'directory') {
      if (after?.kind === 'directory') continue;
      goneDirectories.push(relative);
      // A directory that became a file is removed by that file's replace.
      if (!after) operations.delete.directories.push(relative);
    } else if (!after) {
      operations.delete.files.push(relative);
    }
  }
  const base: Record<string, string | null> = {};
  const all = [
    ...operations.delete.directories,
    ...operations.delete.files,
    ...operations.replace.directories,
    ...operations.replace.files,
  ];
  for (const relative of all) baseOf(old, relative, base);
  return { operations, base };
}
