import path from 'node:path';
import type { Config, HomePaths } from '../config/index.js';
import type { StepName, UpgradeListener } from '../events/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { Store, UpgradeRow } from '../state/index.js';
import { writeFailureBundle } from './diagnosis.js';
import { StepRunner } from './journal.js';
import type { UpgradePlan } from './plan.js';
import type { Collaborators } from './ports.js';
import type { UpgradeResult } from './result.js';
import { failAfterChange, rollback, type SwitchContext } from './switch.js';
import { finishCommitted } from './switch-run.js';

/** A recovery that keeps failing ends terminally instead of retrying at every start (issue 6). */
export const MAX_RECOVERY_ATTEMPTS = 3;

const SWITCH_STEPS: StepName[] = [
  'stopping',
  'applying',
  'migrating',
  'starting',
  'health_check',
  'committing',
  'cleaning_up',
  'rolling_back',
];
const MUST_PASS: StepName[] = ['applying', 'migrating', 'starting', 'health_check'];

export interface RecoveryOptions {
  config: Config;
  paths: HomePaths;
  store: Store;
  collaborators: Collaborators;
  logger: Logger;
  onEvent?: UpgradeListener;
}

/**
 * SPEC 9: any command that starts finishes an unfinished upgrade. Before `stopping` it is
 * abandoned (downloads kept for resume, old services started if the backup had stopped them);
 * after it, rolled back, or committed when every step through `health_check` had passed.
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
    message: `Upgrade #${row.id} (${row.fromVersion ?? 'none'} → ${row.toVersion ?? '?'}) was interrupted at ${row.step ?? 'start'}; recovering (attempt ${attempts})`,
  });
  logger.warn({ upgradeId: row.id, step: row.step, attempts }, 'recovering an interrupted upgrade');

  if (!plan) return abandon(options, row, 'interrupted before it had a plan');
  const runner = new StepRunner(store, row.id, emit, logger, options.config.upgrade.phase_timeout * 1000, undefined);
  const context: SwitchContext = { ...options, emit, plan, upgradeId: row.id, runner };

  if (attempts > MAX_RECOVERY_ATTEMPTS) {
    const error = new NuwaxError(
      ErrorCodes.E_ROLLBACK,
      `Recovery of upgrade #${row.id} was attempted ${MAX_RECOVERY_ATTEMPTS} times and keeps failing; giving up`,
    );
    return failAfterChange(
      context,
      error,
      row.step ?? 'recovery',
      { recovered: false, problems: [error.message], health: null },
      null,
    );
  }

  const journal = store.upgrades.journal(row.id);
  const started = new Set(journal.map((entry) => entry.step as StepName));
  const done = new Set(journal.filter((entry) => entry.status === 'done').map((entry) => entry.step as StepName));
  if (!SWITCH_STEPS.some((step) => started.has(step)) && !plan.applyStarted) {
    if (plan.servicesStopped) {
      await options.collaborators.runtime
        .up({ timeoutMs: options.config.upgrade.phase_timeout * 1000 })
        .catch((error: unknown) => logger.error({ err: error }, 'cannot restart the old services'));
    }
    return abandon(options, row, `interrupted during ${row.step ?? 'preparation'}, before anything changed`);
  }
  if (MUST_PASS.every((step) => done.has(step)) && !started.has('rolling_back')) {
    return finishCommitted(context, 0);
  }
  const error = new NuwaxError(
    ErrorCodes.E_CANCELLED,
    `nuwax was interrupted during ${row.step ?? 'the switch'}; rolled back`,
  );
  const outcome = await rollback(context);
  return failAfterChange(context, error, row.step ?? 'recovery', outcome, null);
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
