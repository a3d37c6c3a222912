import { composeTimeoutMs, type StepContext, type UpgradeStep } from '../context.js';
import { savePlan } from '../plan.js';

/** Stops the old services once (the backup may have stopped them already); downtime starts here. */
export async function stopServices(context: StepContext, signal: AbortSignal): Promise<void> {
  const { plan, store, upgradeId } = context;
  if (plan.servicesStopped) return;
  plan.servicesStopped = true;
  plan.downtimeStartedAt = Date.now();
  savePlan(store, upgradeId, plan);
  const { runtime } = context.collaborators;
  const options = { signal, timeoutMs: composeTimeoutMs(context.config) };
  await (plan.stopWith === 'stop' ? runtime.stop(options) : runtime.down(options));
  plan.stopMs = Date.now() - plan.downtimeStartedAt;
}

export const stopping: UpgradeStep = {
  name: 'stopping',
  phase: 'switch',
  downtime: true,
  noReturn: true,
  summary:
    'docker compose stop the old version, keeping its containers (down when the project or its networks ' +
    'change), if the backup has not already',
  async run(context, signal) {
    await stopServices(context, signal);
    return undefined;
  },
};
