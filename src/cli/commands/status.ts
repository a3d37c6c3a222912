import type { Command } from 'commander';
// Only the small status module: the updater's index loads undici, and status must start fast.
import { outcomeText } from '../../events/index.js';
import { clientUpdateStatus } from '../../selfupdate/status.js';
import { CLIENT_VERSION } from '../client-version.js';
import { action, type CliContext } from '../context.js';
import { DockerRuntime } from '../../runtime/index.js';
import { liveServices, type ServicesView } from '../../services/index.js';

/** What the engine sees now, so a stopped or unhealthy service is not hidden behind the stored version. */
function servicesOf(context: CliContext): Promise<ServicesView> {
  const { config, paths, logger } = context;
  const runtime = new DockerRuntime({
    dockerDir: paths.dockerDir,
    composeFile: paths.composeFile,
    projectName: config.docker.project_name,
    logger,
  });
  return liveServices(config, () => runtime.projectName());
}

function servicesLines(view: ServicesView): string[] {
  if (!view.seen) return [`services: cannot see them: ${view.reason}`];
  if (view.services.length === 0) return [`services: none: no container of project ${view.project} exists`];
  return view.services.map(
    (item, index) =>
      `${index === 0 ? 'services: ' : '          '}${item.service} ${item.detail}` +
      `${item.down ? (item.critical ? ' (critical: DOWN)' : ' (non-critical: down)') : ''}`,
  );
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('the deployed version, the live state of its services, the staged release, the last upgrade')
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
        const services = await servicesOf(context);
        const deployment = store.deployment.get();
        const [last] = store.upgrades.listVersionChanges(1);
        const staged = store.kv.get<Record<string, unknown>>('staged');
        const waiting = store.kv.get<Record<string, unknown>>('daemon:waiting');
        const client = clientUpdateStatus(store);
        const json = {
          home: context.home,
          client: { version: CLIENT_VERSION, update_available: client.available, last_update: client.last },
          version: store.installedVersion(config.versions.docker_service),
          partial: deployment.partial,
          executed_scripts: deployment.executedScripts,
          staged: staged ?? null,
          waiting: waiting ?? null,
          in_progress: running ?? null,
          services: services.seen ? services.services : null,
          services_error: services.seen ? null : services.reason,
          last_upgrade: last
            ? {
                id: last.id,
                from: last.fromVersion,
                to: last.toVersion,
                status: last.status,
                outcome: outcomeText(last.status, last.result).split(' ')[0],
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
        const available = client.available ? ` (update available: ${client.available.version})` : '';
        human.push(`client:   nuwax ${CLIENT_VERSION}${available}`);
        human.push(`staged:   ${staged ? `${String(staged.version)} (${String(staged.strategy)})` : '(nothing)'}`);
        if (waiting) human.push(`waiting:  ${String(waiting.reason)}`);
        if (running) human.push(`running:  an upgrade, ${running}`);
        human.push(...servicesLines(services));
        human.push(
          last
            ? `last:     #${last.id} ${last.fromVersion ?? '(none)'} → ${last.toVersion ?? '?'} ` +
                `${outcomeText(last.status, last.result)}, ${last.finishedAt ?? last.startedAt}`
            : 'last:     (no upgrade yet)',
        );
        context.print(human, json);
      }),
    );
}
