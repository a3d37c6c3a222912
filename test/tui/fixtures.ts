/** Event sequences and SPEC 8 results shared by the TUI and renderer tests. */
import type { PlanEvent, ProgressEvent, UpgradeEvent, UpgradeListener } from '../../src/events/index.js';
import type { UpgradeResult } from '../../src/upgrade/result.js';

export const MiB = 1024 * 1024;

export const plan: PlanEvent = {
  type: 'plan',
  upgradeId: 12,
  from: '1.4.0.1',
  to: '1.4.0.2',
  strategy: 'patch',
  size: 27 * MiB,
  notes: 'Faster startup\nFixes the login page\n\nNew dashboard\nA fourth line that is not shown',
  downloadOnly: false,
};

export function progress(done: number, extra: Partial<ProgressEvent> = {}): ProgressEvent {
  const total = extra.total === undefined ? 27 * MiB : extra.total;
  return {
    type: 'progress',
    step: 'downloading',
    done,
    total,
    rate: 5.1 * MiB,
    eta: total === null ? null : (total - done) / (5.1 * MiB),
    ...extra,
  };
}

export const success: Extract<UpgradeResult, { status: 'success' }> = {
  status: 'success',
  from: '1.4.0.1',
  version: '1.4.0.2',
  strategy: 'patch',
  executed_scripts: ['up-1.4.0.2.sh'],
  backup_id: 7,
  downtime_ms: 8200,
  steps: [{ step: 'downloading', ms: 5300 }],
  upgrade_id: 12,
};

export const partial: UpgradeResult = {
  status: 'partial_success',
  from: '1.4.0.1',
  version: '1.4.0.2',
  strategy: 'patch',
  healthy_services: ['app', 'db'],
  unhealthy_services: ['metrics'],
  severity: 'non-critical',
  recommendation: 'Check the logs of metrics: docker logs metrics',
  backup_id: 7,
  downtime_ms: 9100,
  steps: [],
  upgrade_id: 12,
};

export const failedRecovered: UpgradeResult = {
  status: 'failed',
  error: { code: 'E_HEALTH', message: 'Service app is not healthy after 180s' },
  step: 'health_check',
  recovered: true,
  previous_version: '1.4.0.1',
  backup_id: 7,
  diagnosis: {
    cause: 'Service app is not healthy after 180s',
    recommendations: [
      'app: port 8080 is already in use by another process.',
      'Raise [health] timeout if the services need longer to start.',
    ],
  },
  bundle: 'logs/failures/12',
  upgrade_id: 12,
};

export const failedUnrecovered: UpgradeResult = {
  ...failedRecovered,
  recovered: false,
  manual_steps: ['Run `nuwax rollback 7`.', 'Check `docker-compose ps`.'],
};

export const failedUnchanged: UpgradeResult = {
  status: 'failed',
  error: { code: 'E_NETWORK', message: 'Connection refused by 127.0.0.1:9' },
  step: 'downloading',
  changed: false,
  upgrade_id: 12,
};

export const cancelled: UpgradeResult = {
  status: 'failed',
  error: { code: 'E_ABORTED', message: 'The operation was cancelled' },
  step: 'downloading',
  changed: false,
  upgrade_id: 12,
};

export function result(value: UpgradeResult): UpgradeEvent {
  return { type: 'result', result: value as unknown as Record<string, unknown> & { status: string } };
}

/** A whole successful run, as the orchestrator emits it. */
export function successfulRun(): UpgradeEvent[] {
  const steps = [
    'downloading',
    'verifying',
    'staging',
    'loading_images',
    'backing_up',
    'stopping',
    'applying',
    'migrating',
    'starting',
    'health_check',
    'committing',
    'cleaning_up',
  ] as const;
  const events: UpgradeEvent[] = [
    { type: 'step', step: 'checking', status: 'running' },
    { type: 'step', step: 'checking', status: 'done', ms: 300 },
    plan,
  ];
  for (const step of steps) {
    events.push({ type: 'step', step, status: 'running' });
    if (step === 'downloading') events.push(progress(0), progress(13.5 * MiB), progress(27 * MiB));
    events.push({ type: 'step', step, status: 'done', ms: 1200 });
  }
  events.push(result(success));
  return events;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: looking for ANSI escapes is the point
export const ANSI = /\u001b\[|\u001b\]|\u009b/;

// biome-ignore lint/suspicious/noControlCharactersInRegex: removing colours to read a frame
const ANSI_CODES = /\u001b\[[0-9;?]*[A-Za-z]|\u001b\][^\u0007]*\u0007/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI_CODES, '');
}

/** Feeds events to a line renderer, the clock reading `clock[i]` while event i is handled. */
export function renderLines(
  create: (write: (line: string) => void, options: { now(): number }) => UpgradeListener,
  events: UpgradeEvent[],
  clock: number[] = [],
): string[] {
  const lines: string[] = [];
  let index = 0;
  const render = create((line) => lines.push(line), { now: () => clock[index] ?? 0 });
  for (const [position, event] of events.entries()) {
    index = position;
    render(event);
  }
  return lines;
}
