import type { Command } from 'commander';
import { action } from '../context.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('what the state store knows: deployed version, staged release, last upgrade')
    .action(
      action(async (context) => {
        const { store, config } = context;
        // SPEC 9: any command that starts finishes an interrupted upgrade. The check is one query;
        // the recovery machinery loads only when there is something to recover.
        // Only with the lock: an upgrade whose process still holds it is running, not interrupted.
        let running: string | undefined;
        if (store.upgrades.findUnfinished()) {
          const [{ recoverUnfinished }, { createCollaborators }, { readLockHolder }, { withLock }] = await Promise.all([
            import('../../upgrade/index.js'),
            import('../wiring.js'),
            import('../../daemon/index.js'),
            import('../locked.js'),
          ]);
          try {
            await withLock(context, 'nuwax status (recovery)', () =>
              recoverUnfinished({
                config,
                paths: context.paths,
                store,
                collaborators: createCollaborators(context),
                logger: context.logger,
              }),
            );
          } catch (error) {
            if ((error as { code?: string }).code !== 'E_LOCKED') throw error;
            const holder = await readLockHolder(context.paths.lockFile);
            running = holder
              ? `pid ${holder.pid} (${holder.command}) since ${holder.started_at}`
              : 'by another process';
          }
        }
        const deployment = store.deployment.get();
        const [last] = store.upgrades.list(1);
        const staged = store.kv.get<Record<string, unknown>>('staged');
        const waiting = store.kv.get<Record<string, unknown>>('daemon:waiting');
        const json = {
          home: context.home,
          version: store.installedVersion(config.versions.docker_service),
          partial: deployment.partial,
          executed_scripts: deployment.executedScripts,
          staged: staged ?? null,
          waiting: waiting ?? null,
          in_progress: running ?? null,
          last_upgrade: last
            ? {
                id: last.id,
                from: last.fromVersion,
                to: last.toVersion,
                status: last.status,
                step: last.step,
                trigger: last.trigger,
                started_at: last.startedAt,
                finished_at: last.finishedAt,
              }
            : null,
        };
        const human = [
          `home:     ${context.home}`,
          `version:  ${json.version ?? '(none)'}` +
            `${deployment.partial ? ' (partial: some non-critical services unhealthy)' : ''}`,
        ];
        human.push(`staged:   ${staged ? `${String(staged.version)} (${String(staged.strategy)})` : '(nothing)'}`);
        if (waiting) human.push(`waiting:  ${String(waiting.reason)}`);
        if (running) human.push(`running:  an upgrade, ${running}`);
        human.push(
          last
            ? `last:     #${last.id} ${last.fromVersion ?? '(none)'} → ${last.toVersion ?? '?'} ` +
                `${last.status} at ${last.finishedAt ?? last.startedAt}`
            : 'last:     (no upgrade yet)',
        );
        context.print(human, json);
      }),
    );
}
