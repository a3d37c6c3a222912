import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import type { Config, HomePaths } from '../config/index.js';
import { exists, formatBytes, freeBytes, treeSize } from '../fsutil/index.js';
import type { Logger } from '../log/index.js';
import { scratchCopyOf, type Store } from '../state/index.js';
import { checkForUpdate, listSteps, pendingMigrations, readStaged, type StepInfo } from '../upgrade/index.js';
import { type DowntimeHistory, describeDowntime, downtimeHistory } from './downtime.js';

/** Kept free on top of every estimate, as the upgrade and doctor do. */
const DISK_MARGIN = 256 * 1024 * 1024;

export interface UpgradePreview {
  dry_run: true;
  status: 'planned' | 'up_to_date';
  from: string | null;
  to: string;
  strategy: 'full' | 'patch' | 'none';
  reason?: string;
  package?: { url: string; size: number | null; sha256: string | null; downloaded: boolean };
  /** The rows of the step table this run goes through, with why a row would be skipped. */
  steps: Array<StepInfo & { skipped?: string }>;
  /** docker/ paths the switch replaces and deletes (a full package: everything but protected paths). */
  files: { replace: string[]; delete: string[]; kept: string[] };
  /** What runs: hooks, and migrations when the release is staged (else known after the download). */
  scripts: string[];
  /** images/*.tar of the staged release; null before the download. */
  images: string[] | null;
  disk: {
    needed: number;
    free: number;
    directory: string;
    enough: boolean;
    parts: Array<{ what: string; bytes: number }>;
  };
  downtime: DowntimeHistory;
  changed: false;
}

export interface UpgradePreviewOptions {
  config: Config;
  paths: HomePaths;
  store: Store;
  clientVersion: string;
  logger: Logger;
  dispatcher?: Dispatcher;
  forceFull?: boolean;
  skipBackup?: boolean;
  allowDowngrade?: boolean;
  ignoreRollout?: boolean;
}

async function entries(directory: string): Promise<string[]> {
  return readdir(directory).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
}

/**
 * `nuwax upgrade --dry-run`: the plan read from the step table and the box, nothing changed. The
 * manifest may be fetched; its cache and every other fact the check records go to a scratch copy of
 * the store, and nothing is downloaded.
 */
export async function previewUpgrade(options: UpgradePreviewOptions): Promise<UpgradePreview> {
  const { config, paths } = options;
  const scratch = scratchCopyOf(options.store);
  let check: Awaited<ReturnType<typeof checkForUpdate>>;
  try {
    check = await checkForUpdate({ ...options, store: scratch });
  } finally {
    scratch.close();
  }
  const { decision, current } = check;
  const downtime = downtimeHistory(options.store.upgrades.list(50));
  const free = await freeBytes(paths.home);
  if (decision.strategy === 'none') {
    const disk = { needed: 0, free, directory: paths.home, enough: true, parts: [] };
    const files = { replace: [], delete: [], kept: [] };
    return {
      dry_run: true,
      status: 'up_to_date',
      from: current,
      to: decision.offered,
      strategy: 'none',
      reason: decision.reason,
      steps: [],
      files,
      scripts: [],
      images: [],
      disk,
      downtime,
      changed: false,
    };
  }
  const staged = readStaged(options.store);
  const stagedRoot =
    staged?.version === decision.offered && staged.stagedRoot && (await exists(staged.stagedRoot))
      ? staged.stagedRoot
      : null;
  const sha256 = decision.package.sha256;
  const downloaded = sha256 !== null && options.store.downloads.findByHash(sha256)?.status === 'complete';
  const size = decision.package.size ?? null;
  const protectedPaths = new Set(config.upgrade.protected);
  const present = (await entries(paths.dockerDir)).sort();
  const files =
    decision.strategy === 'patch'
      ? {
          replace: [...decision.operations.replace.files, ...decision.operations.replace.directories],
          delete: [...decision.operations.delete.files, ...decision.operations.delete.directories],
          kept: [...protectedPaths],
        }
      : {
          replace: present.filter((name) => !protectedPaths.has(name)),
          delete: [],
          kept: present.filter((name) => protectedPaths.has(name)),
        };
  const traffic = await exists(path.join(paths.dockerDir, 'traffic.sh'));
  const backupHook = await exists(path.join(paths.dockerDir, 'backup.sh'));
  const scripts: string[] = [];
  if (traffic) scripts.push('traffic.sh off --format=json');
  if (backupHook && !options.skipBackup) scripts.push('backup.sh --format=json');
  if (stagedRoot) {
    const executed = options.store.deployment.get().executedScripts;
    for (const script of await pendingMigrations(stagedRoot, current, decision.offered, executed))
      scripts.push(`migrations/${path.basename(script.up)}`);
  } else scripts.push('migrations/up-<version>.sh of the package: known after the download');
  if (traffic) scripts.push('traffic.sh on --format=json');
  const images = stagedRoot
    ? (await entries(path.join(stagedRoot, 'images'))).filter((name) => name.endsWith('.tar'))
    : null;
  const imageBytes = stagedRoot ? await treeSize(path.join(stagedRoot, 'images')) : (size ?? 0);
  const parts = [
    { what: 'download', bytes: downloaded || stagedRoot ? 0 : (size ?? 0) },
    { what: 'extraction and image load', bytes: stagedRoot ? imageBytes * 2 : (size ?? 0) * 2 },
    { what: 'backup', bytes: options.skipBackup ? 0 : await treeSize(paths.dockerDir) },
    { what: 'margin', bytes: DISK_MARGIN },
  ];
  const needed = parts.reduce((sum, part) => sum + part.bytes, 0);
  const skipped = (step: StepInfo): string | undefined => {
    if (step.name === 'traffic_off' || step.name === 'traffic_on') return traffic ? undefined : 'no docker/traffic.sh';
    if (step.name === 'backing_up' && options.skipBackup) return '--skip-backup';
    if (step.name === 'downloading' && (downloaded || stagedRoot)) return 'already downloaded';
    return undefined;
  };
  return {
    dry_run: true,
    status: 'planned',
    from: current,
    to: decision.offered,
    strategy: decision.strategy,
    reason: decision.reason,
    package: { url: decision.package.url, size, sha256, downloaded },
    steps: listSteps().map((step) => ({ ...step, skipped: skipped(step) })),
    files,
    scripts,
    images,
    disk: { needed, free, directory: paths.home, enough: free >= needed, parts },
    downtime,
    changed: false,
  };
}

export function renderUpgradePreview(preview: UpgradePreview): string[] {
  if (preview.status === 'up_to_date')
    return [
      `upgrade --dry-run: up to date (${preview.from ?? '(none)'}; offered ${preview.to}): ${preview.reason ?? ''}`,
    ];
  const lines = [
    `upgrade --dry-run: nothing is changed`,
    `${preview.from ?? '(none)'} → ${preview.to}, ${preview.strategy}` +
      (preview.package
        ? `, package ${preview.package.size === null ? 'size unknown' : formatBytes(preview.package.size)}`
        : '') +
      (preview.package?.downloaded ? ' (already downloaded)' : ''),
    'steps:',
  ];
  for (const step of preview.steps)
    lines.push(
      `  ${step.skipped ? '-' : '·'} ${step.name.padEnd(14)} ` +
        `${step.skipped ? `skipped: ${step.skipped}` : step.summary}`,
    );
  const listed = (what: string, items: string[]) => lines.push(`${what}: ${items.length ? items.join(', ') : 'none'}`);
  listed('replace', preview.files.replace);
  listed('delete', preview.files.delete);
  listed('kept (protected)', preview.files.kept);
  listed('scripts', preview.scripts);
  lines.push(`images: ${preview.images === null ? 'known after the download' : preview.images.join(', ') || 'none'}`);
  const { disk } = preview;
  lines.push(
    `disk: about ${formatBytes(disk.needed)} needed ` +
      `(${disk.parts.map((part) => `${part.what} ${formatBytes(part.bytes)}`).join(', ')}), ` +
      `${formatBytes(disk.free)} free${disk.enough ? '' : ' — NOT ENOUGH'}`,
  );
  lines.push(describeDowntime(preview.downtime));
  return lines;
}
