/**
 * The node_exporter textfile: the Prometheus text exposition format, built from facts by one pure
 * function. Names follow Prometheus' naming guide: base units in the name, `_total` on counters,
 * `_info` for version labels, a HELP and a TYPE line for each family.
 */
export const UPGRADE_OUTCOMES = [
  'success',
  'partial_success',
  'failed',
  'rolled_back',
  'failed_unrecovered',
  'cancelled',
] as const;
export type UpgradeOutcome = (typeof UPGRADE_OUTCOMES)[number];

export interface MetricsFacts {
  installedVersion: string | null;
  /** Staged and not yet installed. */
  stagedVersion: string | null;
  lastCheck: { at: Date; success: boolean } | null;
  lastUpgrade: {
    finishedAt: Date;
    outcome: UpgradeOutcome;
    from: string | null;
    to: string | null;
    strategy: string | null;
    durationSeconds: number;
    /** Known when the switch ran to a result that measured it. */
    downtimeSeconds: number | null;
  } | null;
  downloadedBytesTotal: number;
  /** A snapshot of the deployment's containers; null when Docker cannot be asked. */
  services: { healthy: number; unhealthy: number } | null;
  disk: { freeBytes: number; budgetBytes: number } | null;
}

type Labels = Record<string, string>;

interface Family {
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  samples: Array<{ labels?: Labels; value: number }>;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  return String(value);
}

function renderFamily(family: Family): string[] {
  if (family.samples.length === 0) return [];
  const lines = [`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`];
  for (const sample of family.samples) {
    const labels = Object.entries(sample.labels ?? {});
    const text = labels.length ? `{${labels.map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(',')}}` : '';
    lines.push(`${family.name}${text} ${formatValue(sample.value)}`);
  }
  return lines;
}

const seconds = (date: Date) => date.getTime() / 1000;
const one = (value: number | null | undefined) => (value === null || value === undefined ? [] : [{ value }]);

export function renderMetrics(facts: MetricsFacts): string {
  const { lastCheck, lastUpgrade, services, disk } = facts;
  const families: Family[] = [
    {
      name: 'nuwax_installed_version_info',
      type: 'gauge',
      help: 'The release installed on this box (the version is the label).',
      samples: facts.installedVersion ? [{ labels: { version: facts.installedVersion }, value: 1 }] : [],
    },
    {
      name: 'nuwax_staged_version_info',
      type: 'gauge',
      help: 'A release downloaded, verified and staged, waiting to be installed.',
      samples: facts.stagedVersion ? [{ labels: { version: facts.stagedVersion }, value: 1 }] : [],
    },
    {
      name: 'nuwax_last_check_timestamp_seconds',
      type: 'gauge',
      help: 'When nuwax last asked the release server what it offers.',
      samples: one(lastCheck && seconds(lastCheck.at)),
    },
    {
      name: 'nuwax_last_check_success',
      type: 'gauge',
      help: '1 when the last check reached the server and read a valid manifest, else 0.',
      samples: one(lastCheck && (lastCheck.success ? 1 : 0)),
    },
    {
      name: 'nuwax_last_upgrade_timestamp_seconds',
      type: 'gauge',
      help: 'When the last upgrade (or rollback) ended.',
      samples: one(lastUpgrade && seconds(lastUpgrade.finishedAt)),
    },
    {
      name: 'nuwax_last_upgrade_outcome',
      type: 'gauge',
      help: 'The outcome of the last upgrade: 1 for the outcome it had, 0 for the others.',
      samples: lastUpgrade
        ? UPGRADE_OUTCOMES.map((outcome) => ({ labels: { outcome }, value: outcome === lastUpgrade.outcome ? 1 : 0 }))
        : [],
    },
    {
      name: 'nuwax_last_upgrade_info',
      type: 'gauge',
      help: 'The versions and strategy of the last upgrade.',
      samples: lastUpgrade
        ? [
            {
              labels: { from: lastUpgrade.from ?? '', to: lastUpgrade.to ?? '', strategy: lastUpgrade.strategy ?? '' },
              value: 1,
            },
          ]
        : [],
    },
    {
      name: 'nuwax_last_upgrade_duration_seconds',
      type: 'gauge',
      help: 'How long the last upgrade took, from its check to its result.',
      samples: one(lastUpgrade?.durationSeconds),
    },
    {
      name: 'nuwax_last_upgrade_downtime_seconds',
      type: 'gauge',
      help: 'How long the services were down during the last upgrade (stop to a healthy start).',
      samples: one(lastUpgrade?.downtimeSeconds),
    },
    {
      name: 'nuwax_downloaded_bytes_total',
      type: 'counter',
      help: 'Package bytes downloaded by this box.',
      samples: [{ value: facts.downloadedBytesTotal }],
    },
    {
      name: 'nuwax_services',
      type: 'gauge',
      help: "The deployment's services by health, when last looked at.",
      samples: services
        ? [
            { labels: { state: 'healthy' }, value: services.healthy },
            { labels: { state: 'unhealthy' }, value: services.unhealthy },
          ]
        : [],
    },
    {
      name: 'nuwax_disk_free_bytes',
      type: 'gauge',
      help: 'Free bytes on the filesystem of the home directory.',
      samples: one(disk?.freeBytes),
    },
    {
      name: 'nuwax_disk_budget_bytes',
      type: 'gauge',
      help: 'Free bytes the next switch asks for: twice the staged package plus a 256 MiB margin.',
      samples: one(disk?.budgetBytes),
    },
  ];
  return `${families.flatMap(renderFamily).join('\n')}\n`;
}
