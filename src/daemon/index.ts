export {
  type CycleAction,
  type CycleFacts,
  cyclesToSkip,
  formatWindow,
  isServerFailure,
  jitterDelayMs,
  planCycle,
  rateLimitFor,
  type WaitingFor,
} from './cycle.js';
export {
  type DaemonHandle,
  type DaemonOptions,
  exitCodeOf,
  runDaemon,
  startDaemon,
  validateSchedule,
} from './daemon.js';
export { decideWatch, startWatch, type WatchDecision, type WatchGuard, type WatchOptions } from './watch.js';
export { acquireLock, type HeldLock, isStaleHolder, type LockHolder, readLockHolder } from './lock.js';
export { createWebhookNotifier, eventText, type WebhookNotifier, type WebhookOptions } from './notify.js';
export {
  type CycleOutcome,
  type CycleRequest,
  CycleRunner,
  type CycleRunnerOptions,
  type DaemonPorts,
  type SkipReason,
  type WaitingRecord,
} from './runner.js';
