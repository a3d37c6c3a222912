import { toNuwaxError } from '../../errors/index.js';
import type { TrafficCall } from '../../events/index.js';
import { composeTimeoutMs, type StepContext, type UpgradeStep } from '../context.js';
import { savePlan } from '../plan.js';

/**
 * docker/traffic.sh (backup.sh's contract): `./traffic.sh off --format=json` before the services stop
 * (typically a maintenance page in the reverse proxy), `./traffic.sh on --format=json` once the new
 * or the old version is healthy again; each prints {"success": …}. Both calls are kept in the plan
 * (so a recovery in a new process knows whether `on` is owed) and in the result.
 */
async function callTraffic(context: StepContext, state: 'off' | 'on', signal?: AbortSignal): Promise<void> {
  const { plan, store, upgradeId, collaborators } = context;
  const traffic = collaborators.traffic;
  if (!traffic) return;
  const started = Date.now();
  let call: TrafficCall | null;
  let failure: unknown = null;
  try {
    call = (await traffic.switch(state, signal)) === null ? null : { success: true, ms: Date.now() - started };
  } catch (error) {
    failure = error;
    const { code, message } = toNuwaxError(error);
    call = { success: false, ms: Date.now() - started, error: { code, message } };
  }
  if (call !== null) {
    plan.traffic = { off: plan.traffic?.off ?? null, on: plan.traffic?.on ?? null, [state]: call };
    savePlan(store, upgradeId, plan);
  }
  if (failure !== null) throw failure;
}

/** `on` is owed when `off` succeeded and no `on` has succeeded since. */
function onOwed(context: StepContext): boolean {
  const traffic = context.plan.traffic;
  return traffic?.off?.success === true && traffic.on?.success !== true;
}

export const trafficOff: UpgradeStep = {
  name: 'traffic_off',
  phase: 'switch',
  downtime: false,
  noReturn: false,
  summary: 'docker/traffic.sh off: protect the traffic (e.g. a maintenance page) before the services stop',
  skip: (context) => (context.collaborators.traffic ? undefined : 'no traffic protection'),
  async run(context, signal) {
    await callTraffic(context, 'off', signal);
    return undefined;
  },
  async afterRestart(context, undoing) {
    if (!onOwed(context)) return;
    await undoing.attempt('traffic.sh on', () =>
      callTraffic(context, 'on', AbortSignal.timeout(composeTimeoutMs(context.config))),
    );
  },
};

export const trafficOn: UpgradeStep = {
  name: 'traffic_on',
  phase: 'commit',
  downtime: false,
  noReturn: true,
  // The new version is healthy: a proxy that will not switch back is reported, not rolled back.
  mayFail: true,
  summary: 'docker/traffic.sh on: let the traffic back in, the new version being healthy',
  skip: (context) => (onOwed(context) ? undefined : 'traffic was not turned off'),
  async run(context, signal) {
    await callTraffic(context, 'on', signal);
    return undefined;
  },
};
