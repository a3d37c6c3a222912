export { type ApplyOptions, applyStaged } from './apply.js';
export { type BaseMismatch, checkPatchBase } from './base.js';
export { backupPathsFor, pathsToBackUp } from './backup-paths.js';
export { parsePatchInfo, readPatchInfo, stagePackage } from './stage.js';
export { digestSymlink, type EntryKind, scanTree, type TreeEntry } from './tree.js';
export {
  type ApplyPlan,
  type ApplyResult,
  METADATA_DIR,
  type PatchInfo,
  type PatchOperations,
  type StagedPackage,
} from './types.js';
export { discardUndo, hasPendingUndo, undoApply } from './undo.js';
export { normaliseOperations, validatePlan } from './validate.js';
