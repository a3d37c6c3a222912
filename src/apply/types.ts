/** Data shapes of staging and apply (SPEC 5). The manifest's operations, in their parsed form. */
export interface PathGroup {
  files: string[];
  directories: string[];
}

export interface PatchOperations {
  replace: PathGroup;
  delete: PathGroup;
}

export interface ApplyPlan {
  kind: 'full' | 'patch';
  /** Required for a patch; ignored for a full package. */
  operations?: PatchOperations;
  /** `[upgrade] protected`, relative to docker/: never deleted or overwritten, nor anything inside. */
  protectedPaths: string[];
}

export interface ApplyResult {
  /** Paths installed from the package (a replaced directory is one path). */
  replaced: string[];
  /** Paths removed and not replaced. */
  deleted: string[];
  /** Paths the package or the operations named but that are protected: left as they were. */
  skippedProtected: string[];
  undoDir: string;
  /** Renames and directory creations performed, each journaled first. */
  operations: number;
}

/** `.nuwax/patch.json` inside a patch package, written by `release patch`. */
export interface PatchInfo {
  from?: string;
  to?: string;
  operations?: PatchOperations;
  /** sha256 of every file the patch replaces or deletes, as it was in the base; null: did not exist. */
  base?: Record<string, string | null>;
}

export interface StagedPackage {
  root: string;
  files: number;
  bytes: number;
  patchInfo: PatchInfo | null;
}

/** The folder inside a package that holds metadata; it is never applied into docker/ (SPEC 5). */
export const METADATA_DIR = '.nuwax';
