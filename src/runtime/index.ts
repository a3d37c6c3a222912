export {
  type CommandOutput,
  type ComposeCommand,
  composeVersion,
  detectCompose,
  dockerAvailable,
  type RunOptions,
  runCommand,
} from './exec.js';
export {
  checkHealth,
  type HealthOptions,
  type HealthReport,
  inspectProject,
  type ProbeResult,
  type ServiceHealth,
} from './health.js';
export {
  archOfImageFile,
  checkImages,
  type HostArch,
  loadImages,
  readSaveManifest,
  withoutArchSuffix,
} from './images.js';
export { CRASH_LOOP_RESTARTS, type ContainerFacts, judge, portInUse, type Verdict } from './judge.js';
export {
  type ContainerEvidence,
  DockerRuntime,
  normaliseProjectName,
  type RuntimeOptions,
  type ServiceEvidence,
} from './runtime.js';
