export { acquireLock } from './lock.js';
export { createWebhookNotifier, eventText } from './notify.js';
