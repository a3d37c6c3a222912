import path from 'node:path';
import { listArchive } from '../archive/index.js';
import type { HomePaths } from '../config/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { exists, formatBytes, freeBytes } from '../fsutil/index.js';
import type { BackupRow, Store } from '../state/index.js';
import { type DowntimeHistory, describeDowntime, downtimeHistory } from './downtime.js';

/** What `backup restore ID` or `rollback [ID]` would do, read from the box; nothing is changed. */
export interface RestorePlan {
  dry_run: true;
  command: 'backup restore' | 'rollback';
  backup: { id: number; version: string | null; kind: string; created_at: string; size: number | null; file: string };
  from_version: string | null;
  to_version: string | null;
  steps: string[];
  /** docker/ paths swapped for the backup's copy; `exists` false: created. */
  replaces: Array<{ path: string; exists: boolean }>;
  scripts: string[];
  disk: { directory: string; needed: number; free: number; enough: boolean };
  /** Services stop for a rollback only; a restore replaces files under running services. */
  stops_services: boolean;
  downtime: DowntimeHistory | null;
  changed: false;
}

export interface RestorePlanOptions {
  store: Store;
  paths: HomePaths;
  installed: string | null;
  command: RestorePlan['command'];
  /** Default (rollback): the newest complete pre-upgrade backup. */
  backupId?: number;
}

function chooseBackup(options: RestorePlanOptions): BackupRow {
  const { store, backupId } = options;
  const row =
    backupId !== undefined
      ? store.backups.get(backupId)
      : store.backups.list().find((item) => item.status === 'complete' && item.kind === 'pre-upgrade');
  if (row?.status !== 'complete' || row.path === null)
    throw new NuwaxError(
      ErrorCodes.E_BACKUP_NOT_FOUND,
      backupId !== undefined
        ? `Backup #${backupId} does not exist or is not complete`
        : 'No complete pre-upgrade backup to roll back to',
    );
  return row;
}

/** The plan of a restore: the archive is read to its end (as `backup verify` does) to count what it unpacks. */
export async function planRestore(options: RestorePlanOptions): Promise<RestorePlan> {
  const backup = chooseBackup(options);
  const file = backup.path!;
  const entries = await listArchive(file);
  const unpacked = entries.reduce((sum, entry) => sum + entry.size, 0);
  const dockerDir = options.paths.dockerDir;
  const replaces = await Promise.all(
    backup.paths.map(async (item) => ({ path: `docker/${item}`, exists: await exists(path.join(dockerDir, item)) })),
  );
  const restoreScript = backup.hookFile && (await exists(path.join(dockerDir, 'restore.sh')));
  // The archive is unpacked beside docker/, on its filesystem, before the swap.
  const directory = path.dirname(path.resolve(dockerDir));
  const free = await freeBytes(directory);
  const rollback = options.command === 'rollback';
  return {
    dry_run: true,
    command: options.command,
    backup: {
      id: backup.id,
      version: backup.version,
      kind: backup.kind,
      created_at: backup.createdAt,
      size: backup.size,
      file,
    },
    from_version: options.installed,
    to_version: rollback ? backup.version : options.installed,
    steps: rollback ? ['stopping', 'applying', 'starting', 'health_check', 'committing'] : ['applying'],
    replaces,
    scripts: restoreScript ? [`restore.sh --file=${backup.hookFile} --format=json`] : [],
    disk: { directory, needed: unpacked, free, enough: free >= unpacked },
    stops_services: rollback,
    downtime: rollback ? downtimeHistory(options.store.upgrades.list(50)) : null,
    changed: false,
  };
}

export function renderRestorePlan(plan: RestorePlan): string[] {
  const { backup, disk } = plan;
  const lines = [
    `${plan.command} --dry-run: nothing is changed`,
    `backup #${backup.id} (${backup.kind}, ${backup.version ?? 'no version'}, ${backup.created_at})`,
  ];
  if (plan.command === 'rollback') lines.push(`version: ${plan.from_version ?? '(none)'} → ${plan.to_version ?? '?'}`);
  lines.push(`steps: ${plan.steps.join(', ')}`);
  for (const item of plan.replaces) lines.push(`  ${item.exists ? 'replace' : 'create '} ${item.path}`);
  lines.push(plan.scripts.length ? `scripts: ${plan.scripts.join(', ')}` : 'scripts: none');
  lines.push(
    `disk: ${formatBytes(disk.needed)} unpacked beside docker/, ${formatBytes(disk.free)} free in ${disk.directory}` +
      (disk.enough ? '' : ' — NOT ENOUGH'),
  );
  if (plan.downtime) lines.push(describeDowntime(plan.downtime));
  else lines.push('services: not stopped (files only; nuwax rollback also stops and starts them)');
  return lines;
}
