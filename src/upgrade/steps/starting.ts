import { composeTimeoutMs, type UpgradeStep } from '../context.js';

export const starting: UpgradeStep = {
  name: 'starting',
  phase: 'switch',
  downtime: true,
  noReturn: true,
  summary: 'docker compose up -d the new version',
  async run(context, signal) {
    await context.collaborators.runtime.up({ signal, timeoutMs: composeTimeoutMs(context.config) });
    return undefined;
  },
};
