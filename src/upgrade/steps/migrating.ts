import { ErrorCodes, isNuwaxError, NuwaxError } from '../../errors/index.js';
import type { UpgradeStep } from '../context.js';
import { pendingMigrations, runScript } from '../migrations.js';
import { savePlan } from '../plan.js';

/** `up-<v>.sh` in version order (SPEC 8); on rollback the down scripts, newest first. */
export const migrating: UpgradeStep = {
  name: 'migrating',
  phase: 'switch',
  downtime: true,
  noReturn: true,
  summary: 'run migrations/up-<v>.sh for current < v <= target, in version order',
  async run(context, signal) {
    const { plan, store, upgradeId, paths, config } = context;
    const executed = store.deployment.get().executedScripts;
    for (const migration of await pendingMigrations(paths.dockerDir, plan.from, plan.to, executed)) {
      // Recorded as executed once it completed: SPEC 8 runs the down scripts of those only; the
      // restore covers what a failed (or killed) one half did.
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
      if (run.code === 0) {
        plan.executedScripts.push(migration.up);
        savePlan(store, upgradeId, plan);
      } else {
        const tail = run.output.trim().split('\n').slice(-3).join(' | ');
        throw new NuwaxError(
          ErrorCodes.E_MIGRATION,
          `Migration ${migration.up} failed with exit code ${run.code}: ${tail}`,
          { details: { script: migration.up, code: run.code, output: run.output } },
        );
      }
    }
    return undefined;
  },
  async undo(context, undoing) {
    const { plan, store, upgradeId, paths, config } = context;
    // Before the file changes are undone: the new files ship the down scripts. executedScripts stays
    // as it was (the failure bundle shows it); reversedScripts keeps a second rollback from repeating one.
    const reversed = plan.reversedScripts ?? [];
    for (const script of [...plan.executedScripts].reverse()) {
      if (reversed.includes(script)) continue;
      const down = script.replace(/^up-/, 'down-');
      await undoing.attempt(`run ${down}`, async () => {
        const run = await runScript(paths.dockerDir, down, {
          from: plan.from,
          to: plan.to,
          timeoutMs: config.upgrade.migration_timeout * 1000,
        }).catch((error: unknown) => {
          // No folder to run it in (the apply never got that far): nothing to reverse.
          if (isNuwaxError(error, ErrorCodes.E_MIGRATION) && errnoOf(error.cause) === 'ENOENT') return null;
          throw error;
        });
        if (run && run.code !== 0)
          throw new NuwaxError(ErrorCodes.E_MIGRATION, `${down} exited with ${run.code}: ${run.output.slice(-400)}`);
      });
      reversed.push(script);
      plan.reversedScripts = reversed;
      savePlan(store, upgradeId, plan);
    }
  },
};

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
