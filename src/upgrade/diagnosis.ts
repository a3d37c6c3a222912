import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { NuwaxError } from '../errors/index.js';
import type { Diagnosis } from '../events/index.js';
import type { HealthFacts } from './ports.js';

export type { Diagnosis };

/** Maps a failure to a cause a person can act on . */
export function diagnose(error: NuwaxError, health?: HealthFacts | null): Diagnosis {
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
          'The down scripts ran in reverse and the backup was restored.',
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
      return diagnoseHealth(error, health ?? null);
    default:
      return { cause: error.message, recommendations: ['See logs/failures/ for the journal and container logs.'] };
  }
}

function diagnoseHealth(error: NuwaxError, health: HealthFacts | null): Diagnosis {
  const recommendations: string[] = [];
  for (const service of health?.services.filter((item) => !item.healthy) ?? []) {
    if (service.portInUse)
      recommendations.push(`${service.service}: port ${service.portInUse} is already in use by another process.`);
    else if (service.oomKilled)
      recommendations.push(
        `${service.service}: killed for lack of memory (OOMKilled); raise its memory limit or free memory.`,
      );
    else if (service.exitCode !== null && service.exitCode !== 0)
      recommendations.push(
        `${service.service}: exited with code ${service.exitCode}; ` +
          `last log lines: ${service.logs.slice(-3).join(' | ')}`,
      );
    else recommendations.push(`${service.service}: ${service.reason || 'not healthy before the health timeout'}.`);
  }
  if (recommendations.length === 0)
    recommendations.push('Raise [health] timeout if the services need longer to start.');
  return { cause: error.message, recommendations };
}

/** Writes logs/failures/<id>/: result, journal, container facts (the failure bundle). */
export async function writeFailureBundle(directory: string, parts: Record<string, unknown>): Promise<string> {
  await mkdir(directory, { recursive: true });
  for (const [name, value] of Object.entries(parts)) {
    const text = typeof value === 'string' ? value : `${JSON.stringify(value, null, 2)}\n`;
    await writeFile(path.join(directory, name.includes('.') ? name : `${name}.json`), text);
  }
  return directory;
}
