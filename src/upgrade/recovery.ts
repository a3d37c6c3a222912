import path from 'node:path';
import type { Config, HomePaths } from '../config/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import type { StepName, UpgradeListener } from '../events/index.js';
import type { Logger } from '../log/index.js';
import type { Store, UpgradeRow } from '../state/index.js';
import type { StepContext } from './context.js';
import { writeFailureBundle } from './diagnosis.js';
import { failAfterChange, finishCommitted } from './outcome.js';
import type { UpgradePlan } from './plan.js';
import type { Collaborators } from './ports.js';
import type { UpgradeResult } from './result.js';
import { restartOldServices, rollBack } from './rollback.js';
import { afterRestartSteps, collectProblems, StepRunner } from './step-runner.js';
import { pastPointOfNoReturn, stepsOf } from './steps/index.js';

/** A recovery that keeps failing ends terminally instead of retrying at every start. */
export const MAX_RECOVERY_ATTEMPTS = 3;

export interface RecoveryOptions {
  config: Config;
  paths: HomePaths;
  store: Store;
  collaborators: Collaborators;
  logger: Logger;
  onEvent?: UpgradeListener;
}

/**
 * SPEC 9: any command that starts finishes an unfinished upgrade. Before the downtime it is
 * abandoned (downloads kept for resume, old services started if the backup had stopped them);
 * after it, rolled back, or committed when every switch step had passed.
 */
export async function recoverUnfinished(options: RecoveryOptions): Promise<UpgradeResult | null> {
  const { store, logger } = options;
  const row = store.upgrades.findUnfinished();
  if (!row) return null;
  const plan = row.plan as UpgradePlan | null;
  const attempts = row.recoveryAttempts + 1;
  store.upgrades.update(row.id, { recoveryAttempts: attempts });
  const emit: UpgradeListener = options.onEvent ?? (() => undefined);
  emit({
    type: 'log',
    level: 'warn',
    message:
      `Upgrade #${row.id} (${row.fromVersion ?? 'none'} → ${row.toVersion ?? '?'}) was interrupted at ` +
      `${row.step ?? 'start'}; recovering (attempt ${attempts})`,
  });
  logger.warn({ upgradeId: row.id, step: row.step, attempts }, 'recovering an interrupted upgrade');

  if (!plan) return abandon(options, row, 'interrupted before it had a plan');
  const runner = new StepRunner(store, row.id, emit, logger, options.config.upgrade.phase_timeout * 1000, undefined);
  const context: StepContext = { ...options, emit, plan, upgradeId: row.id };
  const last = (row.step ?? 'recovery') as StepName;

  if (attempts > MAX_RECOVERY_ATTEMPTS) {
    const error = new NuwaxError(
      ErrorCodes.E_ROLLBACK,
      `Recovery of upgrade #${row.id} was attempted ${MAX_RECOVERY_ATTEMPTS} times and keeps failing; giving up`,
    );
    return failAfterChange(context, error, last, { recovered: false, problems: [error.message], health: null }, null);
  }

  const journal = store.upgrades.journal(row.id);
  const began = [...new Set(journal.map((entry) => entry.step as StepName))];
  const passed = new Set(
    journal.filter((entry) => entry.status === 'done' || entry.status === 'skipped').map((entry) => entry.step),
  );
  if (!began.some(pastPointOfNoReturn) && !plan.applyStarted) {
    const restarted = await restartOldServices(context);
    if (restarted.recovered) {
      const { undoing, problems } = collectProblems(context, new NuwaxError(ErrorCodes.E_CANCELLED, 'interrupted'));
      await afterRestartSteps(stepsOf('switch'), began, context, undoing);
      if (problems.length) logger.warn({ problems }, 'recovery: the old version runs, with problems');
    }
    return abandon(options, row, `interrupted during ${row.step ?? 'preparation'}, before anything changed`);
  }
  const switchPassed = stepsOf('switch').every((step) => passed.has(step.name));
  if (switchPassed && !began.includes('rolling_back')) return finishCommitted(context, runner, 0, began);
  const error = new NuwaxError(
    ErrorCodes.E_CANCELLED,
    `nuwax was interrupted during ${row.step ?? 'the switch'}; rolled back`,
  );
  const outcome = await rollBack(context, runner, 'rolling_back', began, error);
  return failAfterChange(context, error, last, outcome, null);
}

async function abandon(options: RecoveryOptions, row: UpgradeRow, why: string): Promise<UpgradeResult> {
  const result: UpgradeResult = {
    status: 'failed',
    error: {
      code: ErrorCodes.E_CANCELLED,
      message: `Upgrade #${row.id} was abandoned: ${why}; downloads are kept for a resume`,
    },
    step: row.step ?? 'checking',
    changed: false,
    upgrade_id: row.id,
  };
  options.store.upgrades.finish(row.id, 'abandoned', result);
  await writeFailureBundle(path.join(options.paths.failuresDir, String(row.id)), {
    result,
    journal: options.store.upgrades.journal(row.id),
  }).catch((error: unknown) => options.logger.warn({ err: error }, 'cannot write the failure bundle'));
  return result;
}
