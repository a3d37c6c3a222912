import type { Command } from 'commander';
import { action } from '../context.js';

export function registerHistory(program: Command): void {
  program
    .command('history')
    .description('past upgrades, newest first')
    .option('--limit <n>', 'how many', (value) => Number.parseInt(value, 10), 20)
    .action(
      action(async (context, options: { limit: number }) => {
        const rows = context.store.upgrades.list(options.limit);
        const json = rows.map((row) => ({
          id: row.id,
          from: row.fromVersion,
          to: row.toVersion,
          strategy: row.strategy,
          trigger: row.trigger,
          started_by: row.startedBy,
          reason: row.reason,
          status: row.status,
          step: row.step,
          backup_id: row.backupId,
          started_at: row.startedAt,
          finished_at: row.finishedAt,
          result: row.result,
        }));
        const human =
          rows.length === 0
            ? ['no upgrades yet']
            : rows.map(
                (row) =>
                  `#${row.id} ${row.startedAt} ${row.fromVersion ?? '(none)'} → ${row.toVersion ?? '?'} ` +
                  `${row.strategy ?? ''} ${row.status}` +
                  `${row.status === 'failed' || row.status === 'running' ? ` at ${row.step}` : ''} ` +
                  `(${row.trigger}${row.startedBy ? ` by ${row.startedBy}` : ''})`,
              );
        context.print(human, json);
      }),
    );
}
