export { type ImageArchive, type ImageRef, type LayerRef, readImageArchive } from './archive.js';
export {
  dockerSave,
  isThinArchive,
  type RebuildOptions,
  type RebuildResult,
  rebuildThinImages,
  type SaveImages,
} from './rebuild.js';
export { indexTar, type RawEntry, type TarIndex } from './tar-index.js';
export { makeThinArchive, type OldArchive, type ThinResult } from './thin.js';
export { POISON_MANIFEST, THIN_DESCRIPTION, type ThinDescription, readThinDescription } from './thin-format.js';
