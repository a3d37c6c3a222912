import type { Command } from 'commander';
import { outcomeText } from '../../events/index.js';
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
          outcome: outcomeText(row.status, row.result).split(' ')[0],
          warnings: (row.result as { warnings?: string[] } | null)?.warnings ?? [],
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
                  `${row.strategy ?? ''} ${outcomeText(row.status, row.result)}` +
                  `${row.status === 'running' ? ` at ${row.step}` : ''} ` +
                  `(${row.trigger}${row.startedBy ? ` by ${row.startedBy}` : ''})` +
                  warningsText(row.result),
              );
        context.print(human, json);
      }),
    );
}

/** The decision's warnings (an unverified package installed), on the line of the upgrade they concern. */
function warningsText(result: unknown): string {
  const warnings = (result as { warnings?: unknown } | null)?.warnings;
  return Array.isArray(warnings) && warnings.length > 0 ? ` warning: ${warnings.join('; ')}` : '';
}
