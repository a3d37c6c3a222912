import type { WatchOptions } from '../../daemon/index.js';
import type { LogEvent } from '../../events/index.js';
import { criticalServicesDown, repairDocker } from '../../repair/index.js';
import type { CliContext } from '../context.js';
import { recordRepair, repair, runtimeFor } from './repair.js';

/** Production wiring of `[health] watch` and `auto_repair` for the daemon; undefined when the watch is off. */
export function watchOptions(
  context: CliContext,
  announce: (event: LogEvent) => void,
  daemonPid: number = process.pid,
): WatchOptions | undefined {
  const { health } = context.config;
  if (health.watch <= 0) return undefined;
  const docker = repairDocker(runtimeFor(context), context.config);
  return {
    intervalMs: health.watch * 1000,
    autoRepair: health.auto_repair,
    maxPerHour: health.auto_repair_max_per_hour,
    check: () => criticalServicesDown(docker, health.critical),
    // The daemon holds the home's lock already; the watch runs only between its cycles.
    repair: async () => {
      const result = await repair(context, ['failed-startup'], false);
      const id = recordRepair(context, ['failed-startup'], result, `nuwax daemon (pid ${daemonPid}) auto-repair`);
      return `repair failed-startup #${id}: ${result.status}, doctor ${result.verdict}`;
    },
    announce,
    logger: context.logger,
  };
}
