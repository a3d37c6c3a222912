export { type CommandOutput, type ComposeCommand, detectCompose, dockerAvailable, runCommand } from './exec.js';
export { checkHealth, type HealthOptions, type HealthReport, judge, type ServiceHealth } from './health.js';
export { archOfImageFile, checkImages, type HostArch, loadImages } from './images.js';
export { DockerRuntime, normaliseProjectName, type RuntimeOptions } from './runtime.js';
