export { type BuildManifestOptions, buildManifest, type ReleaseSidecar, sha256File, signManifestFile, writeKeyPair, writeManifest } from './manifest.js';
