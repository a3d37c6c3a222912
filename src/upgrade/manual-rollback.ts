import type { Config, HomePaths } from '../config/index.js';
import { commitVersionToConfig } from '../config/index.js';
import type { UpgradeListener } from '../events/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../state/index.js';
import { healthOptions } from './context.js';
import { asStepFailure, StepRunner } from './step-runner.js';
import type { Collaborators } from './ports.js';
import { errorJson, type UpgradeResult } from './result.js';

export interface ManualRollbackOptions {
  config: Config;
  paths: HomePaths;
  store: Store;
  collaborators: Collaborators;
  logger: Logger;
  backupId?: number;
  startedBy: string;
  onEvent?: UpgradeListener;
}

/**
 * `nuwax rollback [BACKUP_ID]`: go back to a backup (default: the newest complete pre-upgrade one):
 * stop, restore files and data, start, check health, and record the backup's version.
 */
export async function rollbackToBackup(options: ManualRollbackOptions): Promise<UpgradeResult> {
  const { store, collaborators, config } = options;
  const backup =
    options.backupId !== undefined
      ? store.backups.get(options.backupId)
      : store.backups.list().find((row) => row.status === 'complete' && row.kind === 'pre-upgrade');
  if (backup?.status !== 'complete') {
    throw new NuwaxError(
      ErrorCodes.E_BACKUP_NOT_FOUND,
      options.backupId !== undefined
        ? `Backup #${options.backupId} does not exist or is not complete`
        : 'No complete pre-upgrade backup to roll back to',
    );
  }
  const current = store.deployment.get().version ?? config.versions.docker_service ?? null;
  const upgradeId = store.upgrades.begin({
    fromVersion: current,
    toVersion: backup.version,
    strategy: 'rollback',
    trigger: 'manual',
    startedBy: options.startedBy,
    reason: `rollback to backup #${backup.id}`,
  });
  const emit: UpgradeListener = options.onEvent ?? (() => undefined);
  const runner = new StepRunner(store, upgradeId, emit, options.logger, config.upgrade.phase_timeout * 1000, undefined);
  const timeoutMs = config.upgrade.phase_timeout * 1000;
  const started = Date.now();
  const traffic = collaborators.traffic;
  // As in an upgrade: traffic.sh off before the stop; a failing off changes nothing (SPEC 8, exit 1).
  let trafficOff = false;
  try {
    if (traffic)
      await runner.run('traffic_off', async () => {
        trafficOff = (await traffic.switch('off')) !== null;
      });
  } catch (error) {
    const failure = asStepFailure(error, 'traffic_off');
    const result: UpgradeResult = {
      status: 'failed',
      error: errorJson(failure),
      step: failure.step,
      changed: false,
      upgrade_id: upgradeId,
    };
    store.upgrades.finish(upgradeId, 'failed', result);
    return result;
  }
  try {
    await runner.run('stopping', () => collaborators.runtime.down({ timeoutMs }));
    await runner.run('applying', () => collaborators.backups.restore(backup.id, { onProgress: emit }));
    await runner.run('starting', () => collaborators.runtime.up({ timeoutMs }));
    await runner.run('health_check', async () => {
      const health = await collaborators.runtime.health(healthOptions(config));
      if (!health.healthy)
        throw new NuwaxError(
          ErrorCodes.E_HEALTH,
          `Unhealthy after the rollback: ${health.criticalFailures.join(', ')}`,
        );
    });
    if (traffic && trafficOff)
      await runner
        .run('traffic_on', async () => {
          await traffic.switch('on');
        })
        .catch((error: unknown) => options.logger.error({ err: error }, 'traffic.sh on failed after the rollback'));
    await runner.run('committing', async () => {
      if (backup.version) await commitVersionToConfig(options.paths.configFile, backup.version);
      store.deployment.save({ version: backup.version, partial: false, partialDetail: null, lastUpgradeId: upgradeId });
    });
  } catch (error) {
    const failure = asStepFailure(error, 'applying');
    const result: UpgradeResult = {
      status: 'failed',
      error: errorJson(failure),
      step: failure.step,
      recovered: false,
      previous_version: current,
      backup_id: backup.id,
      diagnosis: {
        cause: failure.message,
        recommendations: [
          'Check `docker compose ps` and the logs; the backup archive is kept: nuwax backup verify ' + backup.id,
        ],
      },
      upgrade_id: upgradeId,
    };
    store.upgrades.finish(upgradeId, 'failed', result);
    return result;
  }
  const result: UpgradeResult = {
    status: 'success',
    from: current,
    version: backup.version ?? '',
    strategy: 'rollback',
    executed_scripts: [],
    backup_id: backup.id,
    downtime_ms: Date.now() - started,
    steps: runner.timings,
    upgrade_id: upgradeId,
  };
  store.upgrades.finish(upgradeId, 'success', result);
  return result;
}
