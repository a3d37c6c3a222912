import type { Command } from 'commander';
import { refreshMetrics } from '../../metrics/index.js';
import type { ProgressListener } from '../../events/index.js';
import { formatBytes, whenAbsent } from '../../fsutil/index.js';
import type { BackupRow } from '../../state/index.js';
import { action } from '../context.js';
import { withLock } from '../locked.js';
import { createBackupService } from '../wiring.js';
import { confirmInTerminal } from './confirm.js';
import { printRestorePlan } from './plan.js';

function describe(row: BackupRow): string {
  const size = row.size !== null ? formatBytes(row.size) : '';
  return (
    `#${row.id} ${row.createdAt} ${row.kind.padEnd(11)} ${row.status.padEnd(8)} ${row.version ?? '(none)'} ` +
    `${size} ${row.files ?? ''} files ${row.error ? `— ${row.error}` : ''}`
  ).trim();
}

/** Progress on stderr in a terminal: bytes and files, so a long backup shows it is moving. */
function progress(): ProgressListener | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (event) => process.stderr.write(`\r${formatBytes(event.done)}, ${event.files ?? 0} files   `);
}

export function registerBackup(program: Command): void {
  const backup = program.command('backup').description('backups of docker/: create, list, verify, restore, prune');
  backup
    .command('create')
    .description('take a manual backup of docker/ (all of it but protected paths) plus [backup] include')
    .action(
      action(async (context) => {
        const { readdir } = await import('node:fs/promises');
        const entries = (await readdir(context.paths.dockerDir).catch(whenAbsent([] as string[]))).filter(
          (name) => !context.config.upgrade.protected.includes(name),
        );
        const onProgress = progress();
        const row = await createBackupService(context).create({
          paths: [...new Set([...entries, ...context.config.backup.include])],
          kind: 'manual',
          version: context.store.installedVersion(context.config.versions.docker_service),
          onProgress,
        });
        if (onProgress) process.stderr.write('\n');
        context.print(`backup ${describe(row)}`, row);
      }),
    );
  backup
    .command('list')
    .description('backups, newest first')
    .action(
      action(async (context) => {
        const rows = createBackupService(context).list();
        context.print(rows.length ? rows.map(describe) : ['no backups'], rows);
      }),
    );
  backup
    .command('verify')
    .argument('<id>', 'backup id', (value) => Number.parseInt(value, 10))
    .description('re-read a backup: its sha256 against the record, every entry to the end')
    .action(
      action(async (context, id: number) => {
        const result = await createBackupService(context).verify(id);
        context.print(`backup #${id} is intact: ${result.entries} entries, sha256 ${result.sha256}`, { id, ...result });
      }),
    );
  backup
    .command('restore')
    .argument('<id>', 'backup id', (value) => Number.parseInt(value, 10))
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--dry-run', 'print the plan (what is replaced, scripts, disk) and change nothing')
    .description(
      'restore the paths a backup covers (files only; use `nuwax rollback ID` to also stop and start the services)',
    )
    .action(
      action(async (context, id: number, options: { yes?: boolean; dryRun?: boolean }) => {
        if (options.dryRun) return printRestorePlan(context, 'backup restore', id);
        if (!options.yes && !(await confirmInTerminal(`Replace the files covered by backup #${id}? [y/N] `))) {
          context.print('cancelled: nothing was changed', {
            status: 'failed',
            error: { code: 'E_CANCELLED', message: 'cancelled' },
            changed: false,
          });
          return 1;
        }
        const onProgress = progress();
        const result = await withLock(context, 'nuwax backup restore', () =>
          createBackupService(context).restore(id, onProgress ? { onProgress } : {}),
        );
        if (onProgress) process.stderr.write('\n');
        await refreshMetrics(context);
        context.print(`restored backup #${id}: ${result.files} files in ${result.paths.join(', ')}`, { id, ...result });
      }),
    );
  backup
    .command('prune')
    .description('delete backups beyond [backup] retention (never the newest one)')
    .action(
      action(async (context) => {
        const deleted = await createBackupService(context).prune();
        context.print(deleted.length ? deleted.map((row) => `deleted ${describe(row)}`) : ['nothing to prune'], {
          deleted,
        });
      }),
    );
}
