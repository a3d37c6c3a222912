export {
  createDispatcher,
  type FetchedManifest,
  type FetchManifestOptions,
  fetchManifest,
  manifestUrlFor,
  verifyManifestBytes,
} from './fetch.js';
export { parseManifest, resolvePackageUrls } from './parse.js';
export type { Manifest, ManifestArch, PackageHash, PackageRef, PatchOperations, PatchRef } from './schema.js';
export { generateKeyPair, loadPrivateKey, loadPublicKey, signBytes, verifySignature } from './signature.js';
export { compareVersions, isValidVersion, parseVersion, sameBase, type Version } from '../versions/index.js';
