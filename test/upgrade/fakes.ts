import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, NuwaxError } from '../../src/errors/index.js';
import type { Collaborators, HealthFacts } from '../../src/upgrade/index.js';

/**
 * Collaborators for the orchestrator's decision-tree tests. The runtime, backups and packages are
 * stand-ins that record calls and fail on demand (STYLE: "a test can hand it a runtime that fails
 * at step N"); the real ones are exercised by their own tests and by the Docker end-to-end tests.
 * They act on real files: `docker/VERSION` plays the deployment, `docker/data/db` its data.
 */
export interface FakeOptions {
  failBackup?: boolean;
  failUp?: 'new' | 'always';
  unhealthy?: 'critical' | 'noncritical';
  failRestore?: boolean;
  /** Why the release needs compose down rather than stop; default null (stop). */
  switchNeedsDown?: string;
  /** Files the staged release holds (by default none: a patch that leaves compose and .env alone). */
  stagedFiles?: Record<string, string>;
  /** ms that the backup, compose stop/down, compose up and each health check take (a real box's are seconds). */
  slowMs?: number;
  /** A docker/traffic.sh stand-in: `traffic:off`, `traffic:on` in the calls; one of them may fail. */
  traffic?: 'ok' | 'fail_off' | 'fail_on';
  to: string;
}

const pause = (ms: number | undefined) => new Promise((resolve) => setTimeout(resolve, ms ?? 0));

export function fakeCollaborators(dockerDir: string, options: FakeOptions, calls: string[]): Collaborators {
  let version = '';
  // On disk, like a real backup, so a recovery in a "new process" (a new fake) finds it.
  const backupFile = path.join(path.dirname(dockerDir), 'fake-backup.json');
  let upCount = 0;
  const readVersion = () => readFile(path.join(dockerDir, 'VERSION'), 'utf8').catch(() => '');
  const health = (): HealthFacts => {
    const broken = version === options.to ? options.unhealthy : undefined;
    return {
      healthy: broken !== 'critical',
      healthyServices: broken ? ['web'] : ['web', 'worker'],
      unhealthyServices: broken === 'critical' ? ['web'] : broken === 'noncritical' ? ['worker'] : [],
      criticalFailures: broken === 'critical' ? ['web'] : [],
      services: [],
    };
  };
  return {
    downloader: {
      async download(request) {
        calls.push('download');
        const file = path.join(path.dirname(dockerDir), 'package.bin');
        await writeFile(file, 'package');
        return { path: file, size: 7, sha256: request.sha256 ?? 'unverified', reused: false };
      },
    },
    packages: {
      async stage(_file, stagingDir) {
        calls.push('stage');
        await mkdir(path.join(stagingDir, 'root'), { recursive: true });
        for (const [name, text] of Object.entries(options.stagedFiles ?? {}))
          await writeFile(path.join(stagingDir, 'root', name), text);
        return { root: path.join(stagingDir, 'root'), patchInfo: null };
      },
      async patchInfo() {
        return null;
      },
      async validatePlan() {},
      async apply({ undoDir }) {
        calls.push('apply');
        await mkdir(undoDir, { recursive: true });
        await writeFile(path.join(undoDir, 'old'), await readVersion());
        await writeFile(path.join(dockerDir, 'VERSION'), options.to);
        await mkdir(path.join(dockerDir, 'migrations'), { recursive: true });
        return { replaced: ['VERSION'], deleted: [], skippedProtected: [] };
      },
      async undo(undoDir) {
        calls.push('undo');
        const old = await readFile(path.join(undoDir, 'old'), 'utf8').catch(() => null);
        if (old !== null) await writeFile(path.join(dockerDir, 'VERSION'), old);
      },
      async discardUndo(undoDir) {
        calls.push('discardUndo');
        await rm(undoDir, { recursive: true, force: true });
      },
      async checkBase() {
        return { ok: true, mismatches: [] };
      },
      async pathsToBackUp() {
        return ['VERSION', 'data'];
      },
    },
    backups: {
      async create() {
        await pause(options.slowMs);
        calls.push('backup');
        if (options.failBackup)
          throw Object.assign(new Error('backup.sh: {"success":false,"error":"dump failed"}'), { code: 'E_BACKUP' });
        await writeFile(
          backupFile,
          JSON.stringify({
            version: await readVersion(),
            data: await readFile(path.join(dockerDir, 'data', 'db'), 'utf8'),
          }),
        );
        return { id: 7 };
      },
      async restore() {
        calls.push('restore');
        const backup = JSON.parse(await readFile(backupFile, 'utf8').catch(() => 'null')) as {
          version: string;
          data: string;
        } | null;
        if (options.failRestore || !backup) throw new Error('restore failed: archive unreadable');
        await writeFile(path.join(dockerDir, 'VERSION'), backup.version);
        await writeFile(path.join(dockerDir, 'data', 'db'), backup.data);
      },
      async runBackupHook() {
        return null;
      },
      async runRestoreHook() {
        return null;
      },
      async prune() {
        calls.push('prune');
      },
    },
    runtime: {
      async available() {
        return true;
      },
      async validate() {},
      async loadImages() {
        calls.push('loadImages');
        return { loaded: [], skipped: [] };
      },
      async checkImages() {},
      async down() {
        await pause(options.slowMs);
        calls.push('down');
      },
      async stop() {
        await pause(options.slowMs);
        calls.push('stop');
      },
      async switchNeedsDown() {
        return options.switchNeedsDown ?? null;
      },
      async up() {
        await pause(options.slowMs);
        upCount += 1;
        version = await readVersion();
        calls.push(`up:${version}`);
        if (options.failUp === 'always' || (options.failUp === 'new' && version === options.to)) {
          throw Object.assign(new Error(`compose up failed for ${version}`), { code: 'E_COMPOSE' });
        }
      },
      async rememberServices() {},
      async health() {
        await pause(options.slowMs);
        calls.push(`health:${version}`);
        return health();
      },
      async diagnostics() {
        return { upCount };
      },
      async evidence() {
        calls.push('evidence');
        return { project: 'fake', compose: 'docker compose', services: [] };
      },
    },
    traffic: options.traffic && {
      async switch(state) {
        calls.push(`traffic:${state}`);
        if (options.traffic === `fail_${state}`)
          throw new NuwaxError(ErrorCodes.E_TRAFFIC, `docker/traffic.sh failed: ${state}`);
        return { success: true };
      },
    },
  };
}
