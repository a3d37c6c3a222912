import type { HomePaths } from '../config/index.js';
import { freeBytes } from '../fsutil/index.js';
import { lastCheck, type Store, type UpgradeRow } from '../state/index.js';
import { readStaged, type UpgradeResult } from '../upgrade/index.js';
import type { MetricsFacts, UpgradeOutcome } from './render.js';

/** The same margin the upgrade keeps free on top of its estimates. */
const DISK_MARGIN = 256 * 1024 * 1024;
const DOWNLOADED_KEY = 'metrics:downloaded';

interface DownloadedRecord {
  total: number;
  /** Bytes already counted per download (by hash), so a resumed or finished one is not counted twice. */
  seen: Record<string, number>;
}

/** SPEC 8's outcome of a finished upgrade row; null for rows that are not a switch (staged, running). */
export function outcomeOf(row: UpgradeRow): UpgradeOutcome | null {
  const result = row.result as (UpgradeResult & { recovered?: boolean }) | null;
  if (row.status === 'success' || row.status === 'partial_success') return row.status;
  if (row.status === 'abandoned') return 'cancelled';
  if (row.status !== 'failed') return null;
  if (result?.status === 'failed' && result.error.code === 'E_CANCELLED') return 'cancelled';
  if (result && 'recovered' in result) return result.recovered ? 'rolled_back' : 'failed_unrecovered';
  return 'failed';
}

/**
 * A counter must never go down, yet download rows are removed once installed: the bytes seen per
 * row are folded into a total kept in the store.
 */
export function countDownloads(store: Store): number {
  const record = store.kv.get<DownloadedRecord>(DOWNLOADED_KEY) ?? { total: 0, seen: {} };
  const seen: Record<string, number> = {};
  let total = record.total;
  for (const row of store.downloads.list()) {
    const bytes = row.status === 'complete' ? (row.size ?? row.offset) : row.offset;
    const before = record.seen[row.hash] ?? 0;
    // A restarted download (its file changed on the server) starts again from 0: count what it fetches anew.
    total += bytes >= before ? bytes - before : bytes;
    seen[row.hash] = bytes;
  }
  store.kv.set(DOWNLOADED_KEY, { total, seen } satisfies DownloadedRecord);
  return total;
}

function lastUpgradeOf(store: Store): MetricsFacts['lastUpgrade'] {
  for (const row of store.upgrades.listVersionChanges(50)) {
    const outcome = outcomeOf(row);
    if (outcome === null || row.finishedAt === null) continue;
    const result = row.result as { downtime_ms?: number } | null;
    const finishedAt = new Date(row.finishedAt);
    return {
      finishedAt,
      outcome,
      from: row.fromVersion,
      to: row.toVersion,
      strategy: row.strategy,
      durationSeconds: (finishedAt.getTime() - Date.parse(row.startedAt)) / 1000,
      downtimeSeconds: typeof result?.downtime_ms === 'number' ? result.downtime_ms / 1000 : null,
    };
  }
  return null;
}

export async function gatherFacts(
  store: Store,
  installed: string | null,
  paths: HomePaths,
  services: MetricsFacts['services'],
): Promise<MetricsFacts> {
  const staged = readStaged(store);
  const stagedVersion = staged?.version && staged.version !== installed ? staged.version : null;
  const stagedSize = stagedVersion && staged?.sha256 ? (store.downloads.findByHash(staged.sha256)?.size ?? 0) : 0;
  const check = lastCheck(store.kv);
  return {
    installedVersion: installed,
    stagedVersion,
    lastCheck: check ? { at: new Date(check.at), success: check.success } : null,
    lastUpgrade: lastUpgradeOf(store),
    downloadedBytesTotal: countDownloads(store),
    services,
    disk: { freeBytes: await freeBytes(paths.home), budgetBytes: stagedSize * 2 + DISK_MARGIN },
  };
}
