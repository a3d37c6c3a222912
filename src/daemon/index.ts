export { acquireLock } from './lock.js';
export { createWebhookNotifier, eventText } from './notify.js';
export { type CycleAction, cyclesToSkip, jitterDelayMs, planCycle } from './cycle.js';
