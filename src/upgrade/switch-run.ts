import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import { errorJson } from './result.js';
import { pendingMigrations, runScript } from './migrations.js';
import { savePlan } from './plan.js';
import { applyPlanOf } from './prepare.js';
import type { HealthFacts } from './ports.js';
import type { UpgradeResult } from './result.js';
import { cleanUp, commit, failAfterChange, healthOptions, rollback, type SwitchContext } from './switch.js';
import { StepFailure } from './journal.js';
import { detachExtraction } from './staged.js';

/**
 * The switch (SPEC 8): backing_up, stopping, applying, migrating, starting, health_check,
 * committing, cleaning_up. Downtime runs from stopping the old services to a healthy start.
 */
export async function switchRelease(context: SwitchContext & { skipBackup?: boolean }): Promise<UpgradeResult> {
  const { plan, runner, collaborators, store, upgradeId, config, paths } = context;
  const composeTimeoutMs = config.upgrade.phase_timeout * 1000;
  const stopServices = async (signal: AbortSignal) => {
    if (plan.servicesStopped) return;
    plan.servicesStopped = true;
    plan.downtimeStartedAt = Date.now();
    savePlan(store, upgradeId, plan);
    await collaborators.runtime.down({ signal, timeoutMs: composeTimeoutMs });
  };

  // Backup, taken with services stopped (SPEC 8). A failed backup restarts the old services: nothing changed.
  if (plan.skipBackup) {
    runner.skip('backing_up', 'skipped (--skip-backup)');
  } else {
    try {
      await runner.run('backing_up', async (signal) => {
        const paths_ = await collaborators.packages.pathsToBackUp({
          plan: applyPlanOf(plan),
          dockerDir: paths.dockerDir,
          stagedRoot: plan.stagedRoot!,
          include: config.backup.include,
        });
        await stopServices(signal);
        const backup = await collaborators.backups.create({
          paths: paths_,
          kind: 'pre-upgrade',
          version: plan.from,
          upgradeId,
          signal,
          onProgress: context.emit,
        });
        plan.backupId = backup.id;
        store.upgrades.update(upgradeId, { backupId: backup.id });
        savePlan(store, upgradeId, plan);
      });
    } catch (error) {
      const failure = error as StepFailure;
      let restarted = true;
      if (plan.servicesStopped) {
        restarted = await collaborators.runtime.up({ timeoutMs: composeTimeoutMs }).then(
          () => true,
          (caught: unknown) => {
            context.logger.error({ err: caught }, 'cannot restart the old services after a failed backup');
            return false;
          },
        );
      }
      return failAfterChange(
        context,
        failure.error,
        'backing_up',
        { recovered: restarted, problems: restarted ? [] : ['the old services did not start again'], health: null },
        null,
      );
    }
  }

  let health: HealthFacts | null = null;
  try {
    await runner.run('stopping', stopServices);
    await runner.run('applying', async (signal) => {
      plan.applyStarted = true;
      store.transaction(() => {
        savePlan(store, upgradeId, plan);
        // The apply moves files out of the extraction: if it was the staged one, it is staged no more.
        detachExtraction(store, plan);
      });
      await collaborators.packages.apply({
        dockerDir: paths.dockerDir,
        stagedRoot: plan.stagedRoot!,
        plan: applyPlanOf(plan),
        undoDir: plan.undoDir,
        signal,
      });
    });
    await runner.run('migrating', async (signal) => {
      const executed = store.deployment.get().executedScripts;
      for (const migration of await pendingMigrations(paths.dockerDir, plan.from, plan.to, executed)) {
        // Recorded before it runs: a kill -9 mid-script still runs its down script on rollback.
        plan.executedScripts.push(migration.up);
        savePlan(store, upgradeId, plan);
        const run = await runScript(paths.dockerDir, migration.up, {
          from: plan.from,
          to: plan.to,
          timeoutMs: config.upgrade.migration_timeout * 1000,
          signal,
        });
        store.upgrades.recordEvent(upgradeId, 'migration', {
          script: run.script,
          code: run.code,
          ms: run.ms,
          output: run.output,
        });
        if (run.code !== 0) {
          throw new NuwaxError(
            ErrorCodes.E_MIGRATION,
            `Migration ${migration.up} failed with exit code ${run.code}: ${run.output.trim().split('\n').slice(-3).join(' | ')}`,
            {
              details: { script: migration.up, code: run.code, output: run.output },
            },
          );
        }
      }
    });
    await runner.run('starting', (signal) => collaborators.runtime.up({ signal, timeoutMs: composeTimeoutMs }));
    await runner.run(
      'health_check',
      async (signal) => {
        health = await collaborators.runtime.health(healthOptions(config, signal));
        const unhealthy = health.unhealthyServices;
        if (!health.healthy || (config.upgrade.rollback_on === 'any' && unhealthy.length > 0)) {
          throw new NuwaxError(
            ErrorCodes.E_HEALTH,
            `Unhealthy after the upgrade: ${(health.criticalFailures.length ? health.criticalFailures : unhealthy).join(', ')}`,
            { details: { unhealthy } },
          );
        }
        if (unhealthy.length > 0) plan.partial = { healthy: health.healthyServices, unhealthy };
        savePlan(store, upgradeId, plan);
      },
      { timeoutMs: config.health.timeout * 1000 + 30_000 },
    );
  } catch (error) {
    const failure = error instanceof StepFailure ? error : new StepFailure('applying', toNuwaxError(error));
    const outcome = await rollback(context);
    return failAfterChange(context, failure.error, failure.step, outcome, health);
  }
  const downtimeMs = Date.now() - (plan.downtimeStartedAt ?? Date.now());
  return finishCommitted(context, downtimeMs);
}

/** committing + cleaning_up, then the success or partial_success result. Shared with recovery. */
export async function finishCommitted(context: SwitchContext, downtimeMs: number): Promise<UpgradeResult> {
  const { plan, runner, store, upgradeId } = context;
  try {
    await runner.run('committing', () => commit(context));
  } catch (error) {
    // The new version runs and is healthy; only the record failed. Say so loudly, never silently.
    const failure = error as StepFailure;
    const result: UpgradeResult = {
      status: 'failed',
      error: errorJson(failure.error),
      step: 'committing',
      recovered: false,
      previous_version: plan.from,
      backup_id: plan.backupId,
      diagnosis: {
        cause: `The new version ${plan.to} runs but could not be recorded: ${failure.error.message}`,
        recommendations: ['Fix the problem (disk space, permissions on config.toml), then run `nuwax status`.'],
      },
      upgrade_id: upgradeId,
    };
    store.upgrades.finish(upgradeId, 'failed', result);
    return result;
  }
  await runner.run('cleaning_up', () => cleanUp(context)).catch(() => undefined);
  const common = {
    from: plan.from,
    version: plan.to,
    strategy: plan.strategy,
    backup_id: plan.backupId,
    downtime_ms: downtimeMs,
    steps: runner.timings,
    upgrade_id: upgradeId,
  };
  const result: UpgradeResult = plan.partial
    ? {
        status: 'partial_success',
        ...common,
        healthy_services: plan.partial.healthy,
        unhealthy_services: plan.partial.unhealthy,
        severity: 'non-critical',
        recommendation: `Non-critical services are unhealthy (${plan.partial.unhealthy.join(', ')}); check their logs: docker compose logs ${plan.partial.unhealthy.join(' ')}`,
      }
    : {
        status: 'success',
        ...common,
        executed_scripts: plan.executedScripts,
        ...(plan.fallbackReason ? { fallback_reason: plan.fallbackReason } : {}),
      };
  store.upgrades.finish(upgradeId, result.status, result);
  return result;
}
