import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { NuwaxError } from '../errors/index.js';
import type { Diagnosis } from '../events/index.js';
import type { ContainerEvidence, HealthFacts, ServiceEvidence } from './ports.js';

export type { Diagnosis };

/** What the rollback saw and did, so the advice neither guesses nor contradicts it. */
export interface DiagnosisFacts {
  /** The failed release's containers, read before the rollback. */
  evidence?: ContainerEvidence | null;
  /** False with --skip-backup: no advice may say the backup was restored. */
  backupRestored?: boolean;
}

/** Maps a failure to a cause a person can act on . */
export function diagnose(error: NuwaxError, health?: HealthFacts | null, facts: DiagnosisFacts = {}): Diagnosis {
  const details = (error.details ?? {}) as Record<string, unknown>;
  switch (error.code) {
    case 'E_DISK_FULL':
      return {
        cause: error.message,
        recommendations: [
          'Free disk space (old backups: `nuwax backup prune`; unused images: `docker image prune`) ' +
            'and run the upgrade again.',
        ],
      };
    case 'E_IO':
      return {
        cause: error.message,
        recommendations: [
          'Check the storage of the file named (`dmesg` shows I/O errors; a file system remounted read-only ' +
            'often means failing storage) and run the upgrade again.',
        ],
      };
    case 'E_HASH_MISMATCH':
    case 'E_SIZE_MISMATCH':
      return {
        cause: 'The downloaded package does not match the manifest: corrupted in transit or tampered with.',
        recommendations: [
          'Run the upgrade again (the bad file was deleted).',
          'If it repeats, tell the publisher: the package on the server differs from the manifest.',
        ],
      };
    case 'E_SIGNATURE':
      return {
        cause: 'The manifest signature does not verify.',
        recommendations: [
          "Check security.public_keys against the publisher's current key.",
          'Do not set allow_unverified to work around it.',
        ],
      };
    case 'E_IMAGE_LOAD':
    case 'E_IMAGE_MISSING':
    case 'E_IMAGE_ARCH':
      return {
        cause: error.message,
        recommendations: [
          'The release does not carry usable images for this host; the running services were not touched.',
          'Tell the publisher which image failed (see the failure bundle).',
        ],
      };
    case 'E_COMPOSE_INVALID':
      return {
        cause: `The new docker-compose.yml is invalid: ${error.message}`,
        recommendations: [
          'The old services were not stopped. Tell the publisher; `docker compose config` shows the error.',
        ],
      };
    case 'E_MIGRATION':
      return {
        cause:
          `Migration script ${String(details.script ?? '')} failed` +
          `${details.code !== undefined ? ` with exit code ${String(details.code)}` : ''}.`,
        recommendations: [
          'Read the script output in the failure bundle (journal.json).',
          facts.backupRestored === false
            ? 'The down scripts ran in reverse; no backup was taken (--skip-backup), so none was restored.'
            : 'The down scripts ran in reverse and the backup was restored.',
        ],
      };
    case 'E_BACKUP':
      return {
        cause: `The backup failed: ${error.message}`,
        recommendations: ['Nothing was changed. Check docker/backup.sh and free disk space, then retry.'],
      };
    case 'E_NETWORK':
    case 'E_HTTP':
    case 'E_STALL':
      return {
        cause: error.message,
        recommendations: ['Check the network and [server] settings; a resumed download continues where it stopped.'],
      };
    case 'E_COMPOSE':
      return {
        cause: `docker compose failed: ${error.message}`,
        recommendations: ['See compose output in the failure bundle; check ports and volumes.'],
      };
    case 'E_HEALTH':
      return diagnoseHealth(error, health ?? null, facts.evidence ?? null);
    default:
      return { cause: error.message, recommendations: ['See logs/failures/ for the journal and container logs.'] };
  }
}

function diagnoseHealth(error: NuwaxError, health: HealthFacts | null, evidence: ContainerEvidence | null): Diagnosis {
  const failed = failedServices(health, evidence);
  const causes: string[] = [];
  const recommendations: string[] = [];
  for (const name of failed) {
    const facts = health?.services.find((item) => item.service === name);
    const seen = evidence?.services.find((item) => item.service === name);
    const cause = seen ? rootCause(seen) : null;
    if (cause) causes.push(cause);
    if (facts?.portInUse)
      recommendations.push(`${name}: port ${facts.portInUse} is already in use by another process.`);
    else if (seen?.oomKilled || facts?.oomKilled)
      recommendations.push(`${name}: killed for lack of memory (OOMKilled); raise its memory limit or free memory.`);
    else if (cause) recommendations.push(`${cause}.`);
    else if (facts && facts.exitCode !== null && facts.exitCode !== 0)
      recommendations.push(
        `${name}: exited with code ${facts.exitCode}; last log lines: ${facts.logs.slice(-3).join(' | ')}`,
      );
    else recommendations.push(`${name}: ${facts?.reason || 'not healthy before the health timeout'}.`);
  }
  if (evidence && failed.length > 0)
    recommendations.push(
      `The failed release's containers are gone after the rollback: their state, HEALTHCHECK log and last ` +
        `200 log lines are in the failure bundle (evidence.json, logs/<service>.log). ` +
        `The previous version: \`${evidence.compose} ps\` in docker/.`,
    );
  if (recommendations.length === 0)
    recommendations.push('Raise [health] timeout if the services need longer to start.');
  const cause = causes.length > 0 ? `${error.message}. Root cause: ${causes.join('; ')}` : error.message;
  return { cause, recommendations };
}

/** The services that really failed, critical ones first: from the health check, else from the evidence. */
function failedServices(health: HealthFacts | null, evidence: ContainerEvidence | null): string[] {
  if (health) {
    const critical = health.criticalFailures;
    // A non-critical service still settling when a critical one failed did not fail: the evidence says.
    const alsoFailed = health.unhealthyServices.filter((name) => {
      const seen = evidence?.services.find((item) => item.service === name);
      return !critical.includes(name) && (!evidence || (seen !== undefined && rootCause(seen) !== null));
    });
    return [...critical, ...alsoFailed];
  }
  return (evidence?.services ?? []).filter((item) => rootCause(item) !== null).map((item) => item.service);
}

/** One line naming what broke a container: OOM kill, exit, or the failing HEALTHCHECK with its output. */
function rootCause(service: ServiceEvidence): string | null {
  const restarts = service.restartCount > 0 ? ` (restarted ${service.restartCount} times)` : '';
  if (service.oomKilled) return `${service.service}: exited ${service.exitCode}, OOM-killed${restarts}`;
  const exited = service.status === 'exited' || service.status === 'dead' || service.status === 'restarting';
  if (exited && service.exitCode !== 0) {
    const last = service.logs.at(-1);
    return `${service.service}: exited ${service.exitCode}${restarts}${last ? `; last log line: ${last}` : ''}`;
  }
  const failures = service.healthLog.filter((entry) => entry.exitCode !== 0);
  if (failures.length > 0 && service.health !== 'healthy') {
    const output = lastLine(failures.at(-1)!.output) || `exit code ${failures.at(-1)!.exitCode}`;
    const command = service.healthcheck ?? 'HEALTHCHECK';
    const times = failures.length === 1 ? 'once' : `${failures.length} times`;
    return `${service.service}: HEALTHCHECK \`${command}\` failed ${times}: ${output}`;
  }
  return null;
}

function lastLine(text: string): string {
  return (
    text
      .trim()
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .at(-1) ?? ''
  );
}

/** Writes logs/failures/<id>/: result, journal, container facts (the failure bundle). */
export async function writeFailureBundle(directory: string, parts: Record<string, unknown>): Promise<string> {
  await mkdir(directory, { recursive: true });
  for (const [name, value] of Object.entries(parts)) {
    await mkdir(path.dirname(path.join(directory, name)), { recursive: true });
    const text = typeof value === 'string' ? value : `${JSON.stringify(value, null, 2)}\n`;
    await writeFile(path.join(directory, name.includes('.') ? name : `${name}.json`), text);
  }
  return directory;
}
