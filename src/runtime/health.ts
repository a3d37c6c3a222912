import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand } from './exec.js';

export interface HealthOptions {
  critical?: string[];
  settleMs: number;
  timeoutMs: number;
  pollMs?: number;
  http?: Array<{ url: string; status: number }>;
  signal?: AbortSignal;
}

export interface ServiceHealth {
  service: string;
  container: string | null;
  state: string;
  health: string | null;
  healthy: boolean;
  critical: boolean;
  exitCode: number | null;
  oomKilled: boolean;
  restartCount: number;
  reason: string;
  logs: string[];
  portInUse?: string;
}

export interface HealthReport {
  healthy: boolean;
  services: ServiceHealth[];
  healthyServices: string[];
  unhealthyServices: string[];
  criticalFailures: string[];
  probes: Array<{ url: string; ok: boolean; status: number | null; error?: string }>;
}

interface Inspect {
  Id: string;
  Config: { Labels: Record<string, string> };
  HostConfig: { RestartPolicy?: { Name?: string } };
  RestartCount: number;
  State: { Status: string; Running: boolean; Restarting: boolean; OOMKilled: boolean; ExitCode: number; StartedAt: string; Health?: { Status: string } };
}

type Verdict = { decided: true; healthy: boolean; reason: string } | { decided: false; reason: string };

/** SPEC 8 rules for one container, a pure function of its inspect output and the clock. */
export function judge(container: Inspect, settleMs: number, now: number): Verdict {
  const state = container.State;
  if (state.OOMKilled) return { decided: true, healthy: false, reason: 'killed for lack of memory (OOMKilled)' };
  if (state.Health) {
    if (state.Health.Status === 'healthy') return { decided: true, healthy: true, reason: 'HEALTHCHECK healthy' };
    if (state.Health.Status === 'unhealthy') return { decided: true, healthy: false, reason: 'HEALTHCHECK unhealthy' };
    if (!state.Running && !state.Restarting) return { decided: true, healthy: false, reason: `exited with code ${state.ExitCode}` };
    return { decided: false, reason: 'HEALTHCHECK starting' };
  }
  if (state.Restarting || container.RestartCount > 0) return { decided: true, healthy: false, reason: `restarting (exit code ${state.ExitCode}, ${container.RestartCount} restarts)` };
  if (state.Running) {
    const up = now - Date.parse(state.StartedAt);
    return up >= settleMs ? { decided: true, healthy: true, reason: `running for ${Math.round(up / 1000)} s` } : { decided: false, reason: 'settling' };
  }
  if (state.Status === 'exited' || state.Status === 'dead') {
    const oneShot = (container.HostConfig.RestartPolicy?.Name ?? 'no') === 'no' || container.HostConfig.RestartPolicy?.Name === '';
    if (state.ExitCode === 0 && oneShot) return { decided: true, healthy: true, reason: 'one-shot, exited 0' };
    return { decided: true, healthy: false, reason: `exited with code ${state.ExitCode}` };
  }
  return { decided: false, reason: state.Status };
}

async function inspectProject(project: string): Promise<Inspect[]> {
  const ids = (await runCommand('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], { timeoutMs: 30_000 })).stdout.split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  const output = await runCommand('docker', ['inspect', ...ids], { timeoutMs: 30_000 });
  return output.code === 0 ? (JSON.parse(output.stdout) as Inspect[]) : [];
}

export async function lastLogLines(container: string, lines = 20): Promise<string[]> {
  const output = await runCommand('docker', ['logs', '--tail', String(lines), container], { timeoutMs: 30_000 }).catch(() => null);
  return `${output?.stdout ?? ''}${output?.stderr ?? ''}`.split('\n').filter(Boolean).slice(-lines);
}

function portInUse(logs: string[]): string | undefined {
  for (const line of logs) {
    if (!/address already in use|EADDRINUSE|bind.*in use/i.test(line)) continue;
    return /:(\d{2,5})\b/.exec(line)?.[1] ?? 'unknown';
  }
  return undefined;
}

async function probe(url: string, status: number): Promise<{ url: string; ok: boolean; status: number | null; error?: string }> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    await response.arrayBuffer();
    return { url, ok: response.status === status, status: response.status };
  } catch (error) {
    return { url, ok: false, status: null, error: (error as Error).message };
  }
}

/** Polls the project's containers until every service is decided or the timeout passes (SPEC 8). */
export async function checkHealth(project: string, services: string[], options: HealthOptions): Promise<HealthReport> {
  const deadline = Date.now() + options.timeoutMs;
  const critical = new Set(options.critical ?? services);
  let verdicts = new Map<string, { container: Inspect | null; verdict: Verdict }>();
  let probes: HealthReport['probes'] = [];
  for (;;) {
    const containers = await inspectProject(project);
    verdicts = new Map(services.map((service) => {
      const container = containers.find((item) => item.Config.Labels['com.docker.compose.service'] === service) ?? null;
      const verdict: Verdict = container ? judge(container, options.settleMs, Date.now()) : { decided: false, reason: 'no container' };
      return [service, { container, verdict }];
    }));
    probes = await Promise.all((options.http ?? []).map((item) => probe(item.url, item.status)));
    const allDecided = [...verdicts.values()].every(({ verdict }) => verdict.decided);
    const criticalFailed = [...verdicts.entries()].some(([service, { verdict }]) => critical.has(service) && verdict.decided && !verdict.healthy);
    if ((allDecided && probes.every((item) => item.ok)) || criticalFailed || Date.now() >= deadline || options.signal?.aborted) break;
    await sleep(options.pollMs ?? 1000);
  }
  const report: HealthReport = { healthy: true, services: [], healthyServices: [], unhealthyServices: [], criticalFailures: [], probes };
  for (const [service, { container, verdict }] of verdicts) {
    const healthy = verdict.decided && verdict.healthy;
    const logs = healthy || !container ? [] : await lastLogLines(container.Id);
    const port = portInUse(logs);
    report.services.push({
      service,
      container: container?.Id.slice(0, 12) ?? null,
      state: container?.State.Status ?? 'missing',
      health: container?.State.Health?.Status ?? null,
      healthy,
      critical: critical.has(service),
      exitCode: container && !container.State.Running ? container.State.ExitCode : null,
      oomKilled: container?.State.OOMKilled ?? false,
      restartCount: container?.RestartCount ?? 0,
      reason: verdict.decided ? verdict.reason : `not healthy within ${Math.round(options.timeoutMs / 1000)} s (${verdict.reason})`,
      logs,
      ...(port ? { portInUse: port } : {}),
    });
    (healthy ? report.healthyServices : report.unhealthyServices).push(service);
    if (!healthy && critical.has(service)) report.criticalFailures.push(service);
  }
  for (const failed of probes.filter((item) => !item.ok)) report.criticalFailures.push(`probe ${failed.url}`);
  report.healthy = report.criticalFailures.length === 0;
  return report;
}
