import path from 'node:path';
import type { Config, HomePaths } from '../config/index.js';
import { exists, writeFileAtomic } from '../fsutil/index.js';
import type { Logger } from '../log/index.js';
import { DockerRuntime, dockerAvailable, inspectProject, judge } from '../runtime/index.js';
import type { Store } from '../state/index.js';
import { gatherFacts } from './gather.js';
import { type MetricsFacts, renderMetrics } from './render.js';

export { countDownloads, gatherFacts, outcomeOf } from './gather.js';
export { type MetricsFacts, renderMetrics, UPGRADE_OUTCOMES, type UpgradeOutcome } from './render.js';

export interface MetricsContext {
  config: Config;
  paths: HomePaths;
  store: Store;
  logger: Logger;
}

/** The deployment's containers right now, judged as the health check judges them. */
async function servicesSnapshot(context: MetricsContext): Promise<MetricsFacts['services']> {
  const { config, paths } = context;
  if (!(await exists(paths.composeFile)) || !(await dockerAvailable())) return null;
  const runtime = new DockerRuntime({
    dockerDir: paths.dockerDir,
    composeFile: paths.composeFile,
    projectName: config.docker.project_name,
  });
  const containers = await inspectProject(await runtime.projectName());
  const now = Date.now();
  const healthy = containers.filter((container) => {
    const verdict = judge(container, config.health.settle * 1000, now);
    return verdict.decided && verdict.healthy;
  }).length;
  return { healthy, unhealthy: containers.length - healthy };
}

/**
 * Rewrites `[metrics] textfile` (node_exporter's textfile collector) after a daemon cycle or a
 * command that changed the box. A metrics failure is logged, never the command's failure:
 * monitoring must not break an upgrade.
 */
export async function refreshMetrics(context: MetricsContext): Promise<void> {
  const file = context.config.metrics.textfile;
  if (!file) return;
  const { store, config, paths, logger } = context;
  try {
    const services = await servicesSnapshot(context).catch((error: unknown) => {
      logger.warn({ err: error }, 'metrics: cannot look at the services; leaving them out');
      return null;
    });
    const installed = store.installedVersion(config.versions.docker_service);
    const text = renderMetrics(await gatherFacts(store, installed, paths, services));
    const target = path.resolve(paths.home, file);
    // Temp file and rename in the same folder: node_exporter never reads half a file.
    await writeFileAtomic(target, text, 0o644);
  } catch (error) {
    logger.warn({ err: error, file }, 'metrics: cannot write the textfile');
  }
}
