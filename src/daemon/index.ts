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
  startDaemon,
  validateSchedule,
} from './daemon.js';
export {
  decideWatch,
  lookOnce,
  startWatch,
  type WatchDecision,
  type WatchGuard,
  type WatchOptions,
  type WatchState,
} from './watch.js';
export { nextRuns } from './schedule.js';
export { STOP_MESSAGES, STOP_SIGNALS } from './timing.js';
export type {
  BackoffState,
  ChildJob,
  ChildMessage,
  ChildRole,
  DaemonSettings,
  SupervisorOptions,
} from './supervisor.js';
export { PLANNED_RUNS } from './supervisor.js';
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
