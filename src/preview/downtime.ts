import type { UpgradeRow } from '../state/index.js';

/** How long the services were down in the last switches of this box, from `history`. */
export interface DowntimeHistory {
  upgrades: Array<{ id: number; from: string | null; to: string | null; at: string; downtime_ms: number }>;
  /** The longest of them: what to expect at worst; null with no history. */
  max_ms: number | null;
  median_ms: number | null;
}

/** Switches that stopped services and recorded how long: upgrades and rollbacks, not repairs. */
export function downtimeHistory(rows: UpgradeRow[], limit = 5): DowntimeHistory {
  const upgrades = rows
    .filter((row) => row.trigger !== 'repair')
    .flatMap((row) => {
      const downtime = (row.result as { downtime_ms?: unknown } | null)?.downtime_ms;
      return typeof downtime === 'number'
        ? [{ id: row.id, from: row.fromVersion, to: row.toVersion, at: row.startedAt, downtime_ms: downtime }]
        : [];
    })
    .slice(0, limit);
  const sorted = upgrades.map((item) => item.downtime_ms).sort((a, b) => a - b);
  return {
    upgrades,
    max_ms: sorted.length ? sorted.at(-1)! : null,
    median_ms: sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : null,
  };
}

export function describeDowntime(history: DowntimeHistory): string {
  if (history.max_ms === null) return 'downtime: no earlier switch on this box to go by';
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return `downtime: the last ${history.upgrades.length} switch(es) on this box took ${history.upgrades
    .map((item) => seconds(item.downtime_ms))
    .join(', ')} (median ${seconds(history.median_ms!)}, longest ${seconds(history.max_ms)})`;
}
