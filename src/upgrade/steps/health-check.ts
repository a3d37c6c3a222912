import { ErrorCodes, NuwaxError } from '../../errors/index.js';
import { healthOptions, type UpgradeStep } from '../context.js';
import { savePlan } from '../plan.js';

/** Critical services unhealthy (or any, with rollback_on = "any") roll back; the rest is partial (SPEC 8). */
export const healthCheck: UpgradeStep = {
  name: 'health_check',
  phase: 'switch',
  downtime: true,
  noReturn: true,
  summary: 'wait for the services to be healthy (HEALTHCHECK, settle time, HTTP probes)',
  timeoutMs: (config) => config.health.timeout * 1000 + 30_000,
  async run(context, signal) {
    const { plan, store, upgradeId, config } = context;
    const health = await context.collaborators.runtime.health(healthOptions(config, signal));
    context.health = health;
    const unhealthy = health.unhealthyServices;
    if (!health.healthy || (config.upgrade.rollback_on === 'any' && unhealthy.length > 0)) {
      const named = health.criticalFailures.length ? health.criticalFailures : unhealthy;
      throw new NuwaxError(ErrorCodes.E_HEALTH, `Unhealthy after the upgrade: ${named.join(', ')}`, {
        details: { unhealthy },
      });
    }
    if (unhealthy.length > 0) plan.partial = { healthy: health.healthyServices, unhealthy };
    savePlan(store, upgradeId, plan);
    return undefined;
  },
};
