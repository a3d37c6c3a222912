/**
 * nuwax updates itself: client releases in the Tauri updater's format, minisign signatures,
 * side-by-side installs under `<client_root>/versions/`, a self-test, an atomic switch of
 * `current`, and recovery of an interrupted or unhealthy switch.
 */
export { currentVersion, layoutOf, runningClientRoot } from './layout.js';
export {
  type ClientRelease,
  clientManifestUrl,
  fetchClientManifest,
  parseClientManifest,
  platformKey,
  writeClientManifest,
} from './manifest.js';
export {
  type MinisignPublicKey,
  type MinisignSigner,
  minisignSigner,
  parseMinisignPublicKey,
  parseMinisignSignature,
  signMinisignFile,
  verifyMinisignFile,
} from './minisign.js';
export {
  CLIENT_RESTART_EXIT_CODE,
  checkClientRelease,
  recoverClientUpdate,
  runSelfUpdate,
  type SelfUpdateContext,
  type SelfUpdateResult,
  updateClientFromDaemon,
} from './update.js';
export { type ClientUpdateStatus, clientUpdateStatus, type LastClientUpdate } from './status.js';
