import { planRestore, type RestorePlan, renderRestorePlan } from '../../preview/index.js';
import type { CliContext } from '../context.js';

/** `--dry-run` of `backup restore` and `rollback`: the plan, on stdout; nothing is changed, no lock is taken. */
export async function printRestorePlan(
  context: CliContext,
  command: RestorePlan['command'],
  backupId: number | undefined,
): Promise<number> {
  const plan = await planRestore({
    store: context.store,
    paths: context.paths,
    installed: context.store.installedVersion(context.config.versions.docker_service),
    command,
    backupId,
  });
  context.print(renderRestorePlan(plan), plan);
  return plan.disk.enough ? 0 : 1;
}
