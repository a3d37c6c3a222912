import { commitVersionToConfig } from '../../config/index.js';
import type { UpgradeStep } from '../context.js';

/** SPEC 8: the version is committed to config.toml and SQLite only after health passes. Idempotent. */
export const committing: UpgradeStep = {
  name: 'committing',
  phase: 'commit',
  downtime: false,
  noReturn: true,
  summary: 'record the new version in config.toml and SQLite (never rolled back)',
  async run(context) {
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
    return undefined;
  },
};
