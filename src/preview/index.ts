export { type DowntimeHistory, describeDowntime, downtimeHistory } from './downtime.js';
export { planRestore, type RestorePlan, type RestorePlanOptions, renderRestorePlan } from './restore.js';
