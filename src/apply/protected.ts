import { checkRelativePath } from '../fsutil/index.js';

/**
 * Protected paths (SPEC 2 `[upgrade] protected`, SPEC 5): a name is a path relative to docker/,
 * normally top level; the path itself and anything inside it are never deleted or overwritten.
 */
export class ProtectedPaths {
  private readonly paths: string[];

  constructor(paths: readonly string[]) {
    this.paths = [...new Set(paths.map((entry) => checkRelativePath(entry, 'protected path')))];
  }

  /** The path is protected or lies inside a protected path. */
  covers(relative: string): boolean {
    return this.paths.some((entry) => relative === entry || relative.startsWith(`${entry}/`));
  }

  /** The protected path that covers `relative`, if any. */
  covering(relative: string): string | undefined {
    return this.paths.find((entry) => relative === entry || relative.startsWith(`${entry}/`));
  }

  /** A protected path lies strictly inside `relative` (the root '' holds them all). */
  inside(relative: string): boolean {
    if (relative === '') return this.paths.length > 0;
    return this.paths.some((entry) => entry.startsWith(`${relative}/`));
  }

  list(): string[] {
    return [...this.paths];
  }
}

/** The parent of a relative POSIX path; the root is ''. */
export function parentOf(relative: string): string {
  const index = relative.lastIndexOf('/');
  return index === -1 ? '' : relative.slice(0, index);
}

/** `relative` is `ancestor` or lies inside it. */
export function isWithin(relative: string, ancestor: string): boolean {
  return relative === ancestor || relative.startsWith(`${ancestor}/`);
}
