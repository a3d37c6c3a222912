export {
  type BuildManifestOptions,
  buildManifest,
  type ReleaseSidecar,
  signManifestFile,
  writeKeyPair,
  writeManifest,
} from './manifest.js';
export { diffTrees, type TreeDiff } from './diff.js';
export { type PackageSidecar, type PackOptions, packRelease, type ReleaseArch } from './pack.js';
export { type PatchReleaseOptions, patchRelease } from './patch.js';
export type { ThinImageReport } from './thin-images.js';
export { parseRange, type StaticServer, startServer } from './serve.js';
export {
  type BundledPackage,
  type BundleIndex,
  type CreateBundleOptions,
  type CreatedBundle,
  createBundle,
  packagesFor,
} from './bundle.js';
export {
  type BundleHead,
  type ImportBundleOptions,
  type ImportedPackage,
  importBundle,
  type ReadBundleOptions,
  readBundleHead,
} from './bundle-read.js';
