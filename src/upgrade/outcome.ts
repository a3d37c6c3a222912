import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { commitVersionToConfig, parseConfig } from '../config/index.js';
import { whenAbsent } from '../fsutil/index.js';
import { type NuwaxError, toNuwaxError } from '../errors/index.js';
import { type StepName, withOutcome } from '../events/index.js';
import type { StepContext } from './context.js';
import { diagnose, writeFailureBundle } from './diagnosis.js';
import { downtimeBreakdown } from './downtime.js';
import type { HealthFacts } from './ports.js';
import { errorJson, type UpgradeResult } from './result.js';
import { type RollbackOutcome, rollBack } from './rollback.js';
import { asStepFailure, type StepRunner } from './step-runner.js';
import { stepsOf } from './steps/index.js';

/** A failure before anything on the box changed (SPEC 8: `changed: false`, exit 1). */
export function failedUnchanged(
  context: Pick<StepContext, 'store'> & { plan?: Pick<StepContext['plan'], 'traffic'> },
  upgradeId: number,
  error: NuwaxError,
  step: StepName,
): UpgradeResult {
  const result: UpgradeResult = {
    status: 'failed',
    error: errorJson(error),
    step,
    changed: false,
    upgrade_id: upgradeId,
    traffic: context.plan?.traffic,
  };
  context.store.upgrades.finish(upgradeId, 'failed', result);
  return result;
}

/** Builds the failed result after a rollback, writes the failure bundle, records it. */
export async function failAfterChange(
  context: StepContext,
  error: NuwaxError,
  step: string,
  outcome: RollbackOutcome,
  health: HealthFacts | null,
): Promise<UpgradeResult> {
  const { store, plan, upgradeId, collaborators, paths } = context;
  const evidence = outcome.evidence && 'services' in outcome.evidence ? outcome.evidence : null;
  const compose = evidence?.compose ?? 'docker compose';
  const diagnosis = diagnose(error, health ?? outcome.health, { evidence, backupRestored: plan.backupId !== null });
  const bundle = path.join(paths.failuresDir, String(upgradeId));
  const result: UpgradeResult = {
    status: 'failed',
    error: errorJson(error),
    step,
    recovered: outcome.recovered,
    previous_version: plan.from,
    backup_id: plan.backupId,
    diagnosis,
    bundle,
    upgrade_id: upgradeId,
    traffic: plan.traffic,
  };
  const hook = plan.restoreHookFailure;
  const previousHealthy = (outcome.health?.healthy ?? false) && outcome.problems.length === 1;
  if (!outcome.recovered && hook && previousHealthy) {
    // Only the application's own restore failed: say what is back and the one thing left to do.
    result.diagnosis = {
      cause:
        `${diagnosis.cause} The rollback restored nuwax's backup #${String(plan.backupId)} ` +
        `(docker/ files and data) and the previous version ${plan.from ?? '(none)'} runs healthy, ` +
        `but docker/restore.sh failed, so the application's own data may not be back: ${hook.message}` +
        `${hook.output ? `; restore.sh output: ${hook.output.trim().slice(-400)}` : ''}`,
      recommendations: [
        `Run docker/restore.sh again with the recorded file: cd ${paths.dockerDir} && ` +
          `./restore.sh --file=${hook.file ?? '<the file backup.sh reported>'} --format=json`,
        ...diagnosis.recommendations,
      ],
    };
    result.manual_steps = [
      `Run docker/restore.sh again: cd ${paths.dockerDir} && ` +
        `./restore.sh --file=${hook.file ?? '<the file backup.sh reported>'} --format=json`,
    ];
  } else if (!outcome.recovered) {
    result.manual_steps = [
      ...outcome.problems.map((problem) => `Resolve: ${problem}`),
      plan.backupId !== null
        ? `Restore the pre-upgrade backup by hand: nuwax backup restore ${plan.backupId}`
        : 'No backup exists: restore docker/ and data/ from your own copies.',
      `Then start the services: ${compose} up -d (in docker/), and check: nuwax status`,
    ];
    if (plan.traffic?.off?.success && !plan.traffic.on?.success)
      result.manual_steps.push('Once the application works, let the traffic back in: ./traffic.sh on (in docker/)');
  }
  withOutcome(result);
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
      ...evidenceFiles(outcome),
    });
  } catch (caught) {
    context.logger.error({ err: caught }, 'cannot write the failure bundle');
  }
  store.upgrades.finish(upgradeId, 'failed', result);
  return result;
}

/** The commit phase (committing, cleaning_up), then the success or partial_success result. Shared with recovery. */
export async function finishCommitted(
  context: StepContext,
  runner: StepRunner,
  downtimeMs: number,
  began: readonly StepName[] = runner.started,
): Promise<UpgradeResult> {
  const { plan, store, upgradeId } = context;
  try {
    await runner.runSteps(stepsOf('commit'), context);
  } catch (error) {
    // The version could not be recorded: roll back, so the running and the recorded version agree.
    const failure = asStepFailure(error, 'committing');
    const outcome = await rollBack(context, runner, failure.step, began, failure);
    await uncommitConfig(context, outcome);
    return failAfterChange(context, failure, failure.step, outcome, null);
  }
  const common = {
    from: plan.from,
    version: plan.to,
    strategy: plan.strategy,
    backup_id: plan.backupId,
    downtime_ms: downtimeMs,
    downtime: downtimeBreakdown(runner.spans, plan.downtimeStartedAt, plan.stopMs ?? null),
    steps: runner.timings,
    upgrade_id: upgradeId,
    traffic: plan.traffic,
  };
  let result: UpgradeResult;
  if (plan.partial) {
    const unhealthy = plan.partial.unhealthy;
    result = {
      status: 'partial_success',
      ...common,
      healthy_services: plan.partial.healthy,
      unhealthy_services: unhealthy,
      severity: 'non-critical',
      recommendation:
        `Non-critical services are unhealthy (${unhealthy.join(', ')}); ` +
        `check their logs: docker compose logs ${unhealthy.join(' ')}`,
    };
  } else {
    result = { status: 'success', ...common, executed_scripts: plan.executedScripts };
    if (plan.fallbackReason) result.fallback_reason = plan.fallbackReason;
  }
  store.upgrades.finish(upgradeId, result.status, result);
  return result;
}

/** config.toml written but SQLite not: put the previous version back in config.toml too. */
async function uncommitConfig(context: StepContext, outcome: RollbackOutcome): Promise<void> {
  const { plan, paths } = context;
  if (plan.from === null) return;
  try {
    const recorded = parseConfig(await readFile(paths.configFile, 'utf8').catch(whenAbsent('')), paths.configFile)
      .versions.docker_service;
    if (recorded === plan.to) await commitVersionToConfig(paths.configFile, plan.from);
  } catch (caught) {
    const error = toNuwaxError(caught);
    outcome.problems.push(`put ${plan.from} back in config.toml: ${error.code}: ${error.message}`);
    outcome.recovered = false;
  }
}

/** evidence.json and logs/<service>.log of the failed release, for the failure bundle. */
function evidenceFiles(outcome: RollbackOutcome): Record<string, unknown> {
  const files: Record<string, unknown> = {};
  if (!outcome.evidence) return files;
  files['evidence.json'] = outcome.evidence;
  for (const service of 'services' in outcome.evidence ? outcome.evidence.services : []) {
    files[`logs/${service.service}.log`] = service.logs.length > 0 ? `${service.logs.join('\n')}\n` : '';
  }
  return files;
}
