import { rm } from 'node:fs/promises';
import path from 'node:path';
import { type Config, commitVersionToConfig, type HomePaths } from '../config/index.js';
import type { UpgradeListener } from '../events/index.js';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import { exists } from '../fsutil/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../state/index.js';
import { diagnose, writeFailureBundle } from './diagnosis.js';
import type { StepRunner } from './journal.js';
import { runScript } from './migrations.js';
import { savePlan, type UpgradePlan } from './plan.js';
import type { Collaborators, HealthFacts } from './ports.js';
import { errorJson, type UpgradeResult } from './result.js';
import { forgetStaged, sweepStaging } from './staged.js';

/** What the switch half of an upgrade (and a recovery of it) works with. */
export interface SwitchContext {
  store: Store;
  config: Config;
  paths: HomePaths;
  collaborators: Collaborators;
  logger: Logger;
  emit: UpgradeListener;
  plan: UpgradePlan;
  upgradeId: number;
  runner: StepRunner;
  signal?: AbortSignal;
}

export function healthOptions(config: Config, signal?: AbortSignal) {
  return {
    ...(config.health.critical ? { critical: config.health.critical } : {}),
    timeoutMs: config.health.timeout * 1000,
    settleMs: config.health.settle * 1000,
    http: config.health.http,
    ...(signal ? { signal } : {}),
  };
}

function composeTimeoutMs(config: Config): number {
  return config.upgrade.phase_timeout * 1000;
}

/**
 * SPEC 8 rollback: stop, down scripts in reverse (while the new files are still in place: they
 * ship the down scripts), undo the apply, restore files and data from the backup, start the old
 * version, check its health. Each part runs even when an earlier one failed; any failure makes
 * the result `recovered: false`, never a silent success.
 */
export async function rollback(
  context: SwitchContext,
): Promise<{ recovered: boolean; problems: string[]; health: HealthFacts | null }> {
  const { plan, collaborators, paths, config, store } = context;
  const problems: string[] = [];
  let health: HealthFacts | null = null;
  const attempt = async (what: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      const nuwaxError = toNuwaxError(error);
      problems.push(`${what}: ${nuwaxError.code}: ${nuwaxError.message}`);
      context.logger.error({ err: nuwaxError, what }, 'rollback part failed');
    }
  };
  // The rollback must finish even when the user's Ctrl-C or the phase timeout fired: no outer signal.
  await context.runner
    .run(
      'rolling_back',
      async () => {
        await attempt('stop the new services', () =>
          collaborators.runtime.down({ timeoutMs: composeTimeoutMs(config) }),
        );
        for (const script of [...plan.executedScripts].reverse()) {
          const down = script.replace(/^up-/, 'down-');
          await attempt(`run ${down}`, async () => {
            const run = await runScript(paths.dockerDir, down, {
              from: plan.from,
              to: plan.to,
              timeoutMs: config.upgrade.migration_timeout * 1000,
            }).catch((error: unknown) => {
              if ((error as NuwaxError).code === 'E_MIGRATION' && /ENOENT/.test((error as Error).message)) return null;
              throw error;
            });
            if (run && run.code !== 0)
              throw new NuwaxError(
                ErrorCodes.E_MIGRATION,
                `${down} exited with ${run.code}: ${run.output.slice(-400)}`,
              );
          });
        }
        plan.executedScripts = [];
        savePlan(store, context.upgradeId, plan);
        if (plan.applyStarted)
          await attempt('undo the file changes', () => collaborators.packages.undo(plan.undoDir, paths.dockerDir));
        if (plan.backupId !== null)
          await attempt(`restore backup #${plan.backupId}`, () => collaborators.backups.restore(plan.backupId!, {}));
        else if (plan.applyStarted)
          problems.push('no backup was taken (--skip-backup): data/ and migrated state cannot be guaranteed');
        // A failed first install has no previous version to start: the box is back to empty.
        if (await exists(paths.composeFile)) {
          await attempt('start the previous version', () =>
            collaborators.runtime.up({ timeoutMs: composeTimeoutMs(config) }),
          );
          await attempt('health of the previous version', async () => {
            health = await collaborators.runtime.health(healthOptions(config));
            if (!health.healthy)
              throw new NuwaxError(
                ErrorCodes.E_HEALTH,
                `previous version unhealthy: ${health.criticalFailures.join(', ')}`,
              );
          });
        }
        if (problems.length > 0) throw new NuwaxError(ErrorCodes.E_ROLLBACK, problems.join('; '));
      },
      { timeoutMs: Math.max(composeTimeoutMs(config) * 3, config.health.timeout * 1000 * 2) },
    )
    .catch((error: unknown) => {
      if (problems.length === 0) problems.push(toNuwaxError(error).message);
    });
  return { recovered: problems.length === 0, problems, health };
}

/** SPEC 8: the version is committed to config.toml and SQLite only after health passes. Idempotent. */
export async function commit(context: SwitchContext): Promise<void> {
  const { store, plan, paths } = context;
  await commitVersionToConfig(paths.configFile, plan.to);
  store.transaction(() => {
    const deployment = store.deployment.get();
    store.deployment.save({
      version: plan.to,
      executedScripts: [...new Set([...deployment.executedScripts, ...plan.executedScripts])],
      partial: plan.partial !== null,
      partialDetail: plan.partial,
      lastUpgradeId: context.upgradeId,
    });
  });
}

/** After commit: nothing here may fail the upgrade; problems are logged. */
export async function cleanUp(context: SwitchContext): Promise<void> {
  const { plan, collaborators, store, logger } = context;
  const tidy = async (what: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      logger.warn({ err: error, what }, 'clean-up step failed; the upgrade is committed');
    }
  };
  await tidy('discard undo', () => collaborators.packages.discardUndo(plan.undoDir));
  await tidy('remove staging', () => rm(plan.stagingDir, { recursive: true, force: true }));
  // Installed: a staged release (this one, or an older one) is needed no more.
  forgetStaged(store);
  await sweepStaging(context.paths.stagingDir, null, logger);
  if (plan.backupId !== null)
    await tidy('prune backups', () => collaborators.backups.prune({ keepIds: [plan.backupId!] }));
}

/** Builds the failed result after a rollback, writes the failure bundle, records it. */
export async function failAfterChange(
  context: SwitchContext,
  error: NuwaxError,
  step: string,
  outcome: { recovered: boolean; problems: string[]; health: HealthFacts | null },
  health: HealthFacts | null,
): Promise<UpgradeResult> {
  const { store, plan, upgradeId, collaborators, paths } = context;
  const diagnosis = diagnose(error, health ?? outcome.health);
  const bundle = path.join(paths.failuresDir, String(upgradeId));
  const manualSteps = outcome.recovered
    ? undefined
    : [
        ...outcome.problems.map((problem) => `Resolve: ${problem}`),
        plan.backupId !== null
          ? `Restore the pre-upgrade backup by hand: nuwax backup restore ${plan.backupId}`
          : 'No backup exists: restore docker/ and data/ from your own copies.',
        'Then start the services: docker compose up -d (in docker/), and check: nuwax status',
      ];
  const result: UpgradeResult = {
    status: 'failed',
    error: errorJson(error),
    step,
    recovered: outcome.recovered,
    previous_version: plan.from,
    backup_id: plan.backupId,
    diagnosis,
    bundle,
    ...(manualSteps ? { manual_steps: manualSteps } : {}),
    upgrade_id: upgradeId,
  };
  let diagnostics: Record<string, unknown> = {};
  try {
    diagnostics = await collaborators.runtime.diagnostics();
  } catch (caught) {
    diagnostics = { error: toNuwaxError(caught).message };
  }
  try {
    await writeFailureBundle(bundle, {
      result,
      journal: store.upgrades.journal(upgradeId),
      events: store.upgrades.events(upgradeId),
      plan,
      health: health ?? outcome.health,
      containers: diagnostics,
    });
  } catch (caught) {
    context.logger.error({ err: caught }, 'cannot write the failure bundle');
  }
  store.upgrades.finish(upgradeId, 'failed', result);
  return result;
}
