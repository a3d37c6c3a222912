import type { Command } from 'commander';
import { refreshMetrics } from '../../metrics/index.js';
import { exitCodeFor, rollbackToBackup } from '../../upgrade/index.js';
import { action, safeUser } from '../context.js';
import { createPlainRenderer } from '../render/plain.js';
import { withLock } from '../locked.js';
import { createCollaborators } from '../wiring.js';
import { confirmInTerminal } from './confirm.js';
import { printRestorePlan } from './plan.js';

export function registerRollback(program: Command): void {
  program
    .command('rollback')
    .description('go back to a backup (default: the newest pre-upgrade backup): stop, restore, start, check health')
    .argument('[backup-id]', 'backup id (see `nuwax backup list`)', (value) => Number.parseInt(value, 10))
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--dry-run', 'print the plan (what is replaced, scripts, disk, past downtime) and change nothing')
    .action(
      action(async (context, backupId: number | undefined, options: { yes?: boolean; dryRun?: boolean }) => {
        if (options.dryRun) return printRestorePlan(context, 'rollback', backupId);
        if (
          !options.yes &&
          !(await confirmInTerminal(
            `Stop the services and restore backup ` +
              `${backupId === undefined ? '(newest pre-upgrade)' : `#${backupId}`}? [y/N] `,
          ))
        ) {
          context.print('cancelled: nothing was changed', {
            status: 'failed',
            error: { code: 'E_CANCELLED', message: 'cancelled' },
            changed: false,
          });
          return 1;
        }
        const render = context.json ? undefined : createPlainRenderer((line) => process.stderr.write(`${line}\n`));
        const result = await withLock(context, 'nuwax rollback', () =>
          rollbackToBackup({
            config: context.config,
            paths: context.paths,
            store: context.store,
            collaborators: createCollaborators(context),
            logger: context.logger,
            startedBy: safeUser(),
            backupId,
            onEvent: render,
          }),
        );
        await refreshMetrics(context);
        context.print(`rollback: ${result.status}${'version' in result ? ` — now on ${result.version}` : ''}`, result);
        return exitCodeFor(result);
      }),
    );
}
