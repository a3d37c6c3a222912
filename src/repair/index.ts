import { gatherRepairFacts, type GatherOptions } from './gather.js';
import { performPlan } from './perform.js';
import { planRepair } from './plan.js';
import type { RepairKind, RepairRun } from './types.js';
import type { Logger } from '../log/index.js';

export { repairDocker } from './docker.js';
export {
  type ContainerView,
  criticalServicesDown,
  type GatherOptions,
  gatherRepairFacts,
  type RepairDocker,
} from './gather.js';
export { mountsFromComposeJson, mountsFromComposeYaml, parseUser } from './mounts.js';
export { performPlan } from './perform.js';
export { describeAction, planRepair } from './plan.js';
export * from './types.js';

export interface RepairOptions extends GatherOptions {
  dryRun: boolean;
  signal?: AbortSignal;
  logger?: Logger;
}

/** One repair: gather the facts, plan from them, carry the plan out (or, with dryRun, only say it). */
export async function runRepair(kind: RepairKind, options: RepairOptions): Promise<RepairRun> {
  const plan = planRepair(kind, await gatherRepairFacts(kind, options));
  return performPlan(plan, {
    docker: options.docker,
    dryRun: options.dryRun,
    signal: options.signal,
    logger: options.logger,
  });
}

/** `all`: the file repairs first, then the network, then the startup; each sees what the one before did. */
export const REPAIR_ORDER: RepairKind[] = ['permissions', 'volumes', 'network', 'failed-startup'];
