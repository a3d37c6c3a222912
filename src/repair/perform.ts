import { chmod, chown, mkdir } from 'node:fs/promises';
import { ErrorCodes, NuwaxError, throwIfAborted, toNuwaxError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { RepairDocker } from './gather.js';
import { describeAction } from './plan.js';
import type { ActionOutcome, RepairAction, RepairPlan, RepairRun } from './types.js';

export interface PerformOptions {
  docker: RepairDocker;
  dryRun: boolean;
  signal?: AbortSignal;
  logger?: Logger;
}

/** Creates the folder and its missing parents; the owner and mode go on the folder itself only. */
async function makeDirectory(action: Extract<RepairAction, { type: 'mkdir' }>): Promise<void> {
  await mkdir(action.path, { recursive: true, mode: action.mode });
  await chmod(action.path, action.mode);
  if (action.owner) await chown(action.path, action.owner.uid, action.owner.gid);
}

async function perform(action: RepairAction, options: PerformOptions, unhealthy: string[]): Promise<void> {
  const { docker, signal } = options;
  switch (action.type) {
    case 'stop':
      return docker.stop(signal);
    case 'remove_network':
      return docker.removeNetwork(action.name);
    case 'start':
      return docker.start(signal);
    case 'wait_health': {
      unhealthy.push(...(await docker.waitHealth(signal)));
      if (unhealthy.length)
        throw new NuwaxError(ErrorCodes.E_HEALTH, `not healthy after the repair: ${unhealthy.join(', ')}`);
      return;
    }
    case 'mkdir':
      return makeDirectory(action);
    case 'chown':
      return chown(action.path, action.owner.uid, action.owner.gid);
    case 'chmod':
      return chmod(action.path, action.mode);
  }
}

/**
 * Carries a plan out in order. The first failure ends it: the actions after it are skipped (a start
 * after a failed stop, or a health wait after a failed start, would only add noise).
 */
export async function performPlan(plan: RepairPlan, options: PerformOptions): Promise<RepairRun> {
  const outcomes: ActionOutcome[] = [];
  const unhealthy: string[] = [];
  let failed = false;
  for (const action of plan.actions) {
    const description = describeAction(action);
    if (options.dryRun || failed) {
      outcomes.push({ action, description, status: options.dryRun ? 'planned' : 'skipped' });
      continue;
    }
    try {
      throwIfAborted(options.signal);
      await perform(action, options, unhealthy);
      outcomes.push({ action, description, status: 'done' });
    } catch (error) {
      const nuwaxError = toNuwaxError(error);
      options.logger?.warn({ err: error, action }, 'repair: an action failed');
      outcomes.push({
        action,
        description,
        status: 'failed',
        error: { code: nuwaxError.code, message: nuwaxError.message },
      });
      failed = true;
    }
  }
  const run: RepairRun = { kind: plan.kind, findings: plan.findings, actions: outcomes };
  if (unhealthy.length) run.unhealthy = unhealthy;
  return run;
}
