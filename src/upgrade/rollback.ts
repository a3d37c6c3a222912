import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import type { StepName } from '../events/index.js';
import { exists } from '../fsutil/index.js';
import { composeTimeoutMs, healthOptions, type StepContext } from './context.js';
import type { ContainerEvidence, HealthFacts } from './ports.js';
import { afterRestartSteps, collectProblems, type StepRunner, undoSteps } from './step-runner.js';
import { pastPointOfNoReturn, stepsOf } from './steps/index.js';

export interface RollbackOutcome {
  recovered: boolean;
  problems: string[];
  health: HealthFacts | null;
  /** The failed release's containers as they were when the rollback began; null when not read. */
  evidence?: ContainerEvidence | { error: string } | null;
}

/**
 * SPEC 8 rollback, journaled as `rolling_back`: stop, the undo of each switch step that began
 * (newest first: down scripts, file changes, backup), start the old version, check its health.
 * Each part runs even when an earlier one failed; any failure makes `recovered: false`. Before the
 * downtime (a failed backup) the box's files are as they were: the steps that began are undone and
 * the old services started again, without a rollback in the journal.
 */
export async function rollBack(
  context: StepContext,
  runner: StepRunner,
  failed: StepName,
  began: readonly StepName[],
  failure: NuwaxError,
): Promise<RollbackOutcome> {
  const { collaborators, paths, config } = context;
  const { undoing, problems } = collectProblems(context, failure);
  // The evidence goes once the new containers stop: read it before any part of the rollback runs.
  const evidence = pastPointOfNoReturn(failed) ? await readEvidence(context) : null;
  if (!pastPointOfNoReturn(failed)) {
    await undoSteps(stepsOf('switch'), began, context, undoing);
    const restarted = await restartOldServices(context);
    if (restarted.recovered) await afterRestartSteps(stepsOf('switch'), began, context, undoing);
    return {
      ...restarted,
      problems: [...problems, ...restarted.problems],
      recovered: restarted.recovered && problems.length === 0,
    };
  }
  let health: HealthFacts | null = null;
  const timeoutMs = composeTimeoutMs(config);
  // The rollback must finish even when the user's Ctrl-C or the phase timeout fired: no outer signal.
  await runner
    .run(
      'rolling_back',
      async () => {
        await undoing.attempt('stop the new services', () => collaborators.runtime.down({ timeoutMs }));
        await undoSteps(stepsOf('switch'), began, context, undoing);
        // A failed first install has no previous version to start: the box is back to empty.
        if (await exists(paths.composeFile)) {
          await undoing.attempt('start the previous version', () => collaborators.runtime.up({ timeoutMs }));
          await undoing.attempt('health of the previous version', async () => {
            health = await collaborators.runtime.health(healthOptions(config));
            if (!health.healthy)
              throw new NuwaxError(
                ErrorCodes.E_HEALTH,
                `previous version unhealthy: ${health.criticalFailures.join(', ')}`,
              );
            await afterRestartSteps(stepsOf('switch'), began, context, undoing);
          });
        }
        if (problems.length > 0) throw new NuwaxError(ErrorCodes.E_ROLLBACK, problems.join('; '));
      },
      { timeoutMs: Math.max(timeoutMs * 3, config.health.timeout * 1000 * 2) },
    )
    .catch((error: unknown) => {
      if (problems.length === 0) problems.push(toNuwaxError(error).message);
    });
  return { recovered: problems.length === 0, problems, health, evidence };
}

/** Nothing on the box changed: start the old services again if they were stopped. */
export async function restartOldServices(context: StepContext): Promise<RollbackOutcome> {
  if (!context.plan.servicesStopped) return { recovered: true, problems: [], health: null };
  const restarted = await context.collaborators.runtime.up({ timeoutMs: composeTimeoutMs(context.config) }).then(
    () => true,
    (caught: unknown) => {
      context.logger.error({ err: caught }, 'cannot restart the old services');
      return false;
    },
  );
  return { recovered: restarted, problems: restarted ? [] : ['the old services did not start again'], health: null };
}

async function readEvidence(context: StepContext): Promise<ContainerEvidence | { error: string }> {
  try {
    return await context.collaborators.runtime.evidence();
  } catch (caught) {
    const error = toNuwaxError(caught);
    context.logger.warn({ err: error }, 'cannot read the containers before the rollback');
    return { error: `${error.code}: ${error.message}` };
  }
}
