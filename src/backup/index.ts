import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createTarGz, extractArchive, listArchive } from '../archive/index.js';
import type { ProgressListener } from '../events/index.js';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import { checkRelativePath, ensureFreeSpace, fsyncDirectory } from '../fsutil/index.js';
import { type Logger, silentLogger } from '../log/index.js';
import type { BackupKind, BackupRow, Store } from '../state/index.js';
import { runHook } from './hooks.js';

export { runHook };

/** Inside every archive: what it covers, so a restore works even without the database. */
const METADATA = '.nuwax-backup.json';
const MARGIN = 64 * 1024 * 1024;

interface BackupMetadata {
  id: number;
  version: string | null;
  paths: string[];
  absent: string[];
  created_at: string;
}

export interface BackupServiceOptions {
  home: string;
  dockerDir: string;
  backupsDir: string;
  store: Store;
  logger?: Logger;
  compression?: number;
  retention?: { count?: number | undefined; days?: number | undefined };
}

async function sizeOf(target: string): Promise<number> {
  const info = await lstat(target).catch(() => null);
  if (!info) return 0;
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const name of await readdir(target)) total += await sizeOf(path.join(target, name));
  return total;
}

async function sha256Of(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hash, signal ? { signal } : {});
  return hash.digest('hex');
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Backups (SPEC 8, 12): streaming tar.gz archives recorded in SQLite, verified, restorable, pruned. */
export class BackupService {
  private readonly logger: Logger;

  constructor(private readonly options: BackupServiceOptions) {
    this.logger = options.logger ?? silentLogger;
  }

  list(): BackupRow[] {
    return this.options.store.backups.list();
  }

  /** A kill -9 during create leaves a temp file: removed when its writer is gone. */
  private async removeStaleTemporaries(): Promise<void> {
    for (const name of await readdir(this.options.backupsDir).catch(() => [] as string[])) {
      const match = /^\..+\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name);
      if (match && !pidAlive(Number(match[1]))) await rm(path.join(this.options.backupsDir, name), { force: true });
    }
  }

  async create(request: { paths: string[]; kind: BackupKind; version: string | null; upgradeId?: number | null; signal?: AbortSignal; onProgress?: ProgressListener; runHook?: boolean }): Promise<BackupRow> {
    const { store, dockerDir, backupsDir } = this.options;
    const paths = [...new Set(request.paths.map((item) => checkRelativePath(item, 'backup path')))];
    const id = store.backups.begin({ version: request.version, kind: request.kind, paths, upgradeId: request.upgradeId ?? null });
    const file = path.join(backupsDir, `backup-${id}-${new Date().toISOString().replace(/[:.]/g, '-')}.tar.gz`);
    try {
      await mkdir(backupsDir, { recursive: true, mode: 0o700 });
      await chmod(backupsDir, 0o700);
      await this.removeStaleTemporaries();
      const hook = request.runHook === false ? null : await runHook(dockerDir, 'backup.sh', []);
      const absent: string[] = [];
      let estimate = 0;
      for (const relative of paths) {
        const size = await sizeOf(path.join(dockerDir, ...relative.split('/')));
        if (!(await lstat(path.join(dockerDir, ...relative.split('/'))).catch(() => null))) absent.push(relative);
        estimate += size;
      }
      await ensureFreeSpace(backupsDir, estimate + MARGIN, `backup #${id}`);
      const metadata: BackupMetadata = { id, version: request.version, paths, absent, created_at: new Date().toISOString() };
      const created = await createTarGz(dockerDir, paths, file, {
        level: this.options.compression ?? 6,
        mode: 0o600,
        step: 'backing_up',
        extraEntries: [{ name: METADATA, content: Buffer.from(JSON.stringify(metadata)) }],
        ...(request.signal ? { signal: request.signal } : {}),
        ...(request.onProgress ? { onProgress: request.onProgress } : {}),
      });
      store.backups.complete(id, { path: file, size: created.size, sha256: created.sha256, files: created.files, hookFile: typeof hook?.file === 'string' ? hook.file : null });
      return store.backups.get(id)!;
    } catch (caught) {
      const error = toNuwaxError(caught, ErrorCodes.E_BACKUP);
      await rm(file, { force: true });
      store.backups.fail(id, `${error.code}: ${error.message}`);
      throw error;
    }
  }

  private completeRow(id: number): BackupRow & { path: string } {
    const row = this.options.store.backups.get(id);
    if (!row || row.status !== 'complete' || !row.path) throw new NuwaxError(ErrorCodes.E_BACKUP_NOT_FOUND, `Backup #${id} does not exist or is not complete`);
    return row as BackupRow & { path: string };
  }

  /** Re-reads the archive: sha256 against the record, and every entry to its end. */
  async verify(id: number, options: { signal?: AbortSignal } = {}): Promise<{ ok: true; entries: number; sha256: string }> {
    const row = this.completeRow(id);
    const info = await stat(row.path).catch(() => null);
    if (!info) throw new NuwaxError(ErrorCodes.E_BACKUP, `Backup #${id}: ${row.path} is missing`);
    const sha256 = await sha256Of(row.path, options.signal);
    if (sha256 !== row.sha256) throw new NuwaxError(ErrorCodes.E_BACKUP, `Backup #${id} is corrupted: sha256 ${sha256}, recorded ${row.sha256}`, { details: { expected: row.sha256, actual: sha256 } });
    try {
      const entries = await listArchive(row.path, options);
      return { ok: true, entries: entries.length, sha256 };
    } catch (error) {
      throw new NuwaxError(ErrorCodes.E_BACKUP, `Backup #${id} is unreadable: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Restores into a staging folder beside docker/ first, then swaps each covered path in by
   * renames: a restore that fails midway leaves the current files as they were. A covered path
   * that was absent at backup time is removed. Needs no compose file, nor docker/ itself.
   */
  async restore(id: number, options: { signal?: AbortSignal; onProgress?: ProgressListener; runHook?: boolean } = {}): Promise<{ files: number; paths: string[] }> {
    const row = this.completeRow(id);
    await this.verify(id, options);
    const { dockerDir } = this.options;
    const parent = path.dirname(dockerDir);
    const staging = path.join(parent, `.nuwax-restore-${id}-${process.pid}`);
    const aside = path.join(parent, `.nuwax-restore-old-${id}-${process.pid}`);
    await rm(staging, { recursive: true, force: true });
    await rm(aside, { recursive: true, force: true });
    await mkdir(dockerDir, { recursive: true });
    try {
      const extracted = await extractArchive(row.path, staging, { step: 'rolling_back', ...(options.signal ? { signal: options.signal } : {}), ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
      const metadata = JSON.parse(await readFile(path.join(staging, METADATA), 'utf8')) as BackupMetadata;
      const swapped: Array<{ relative: string; hadCurrent: boolean }> = [];
      try {
        for (const relative of metadata.paths.map((item) => checkRelativePath(item))) {
          const live = path.join(dockerDir, ...relative.split('/'));
          const saved = path.join(aside, ...relative.split('/'));
          const restored = path.join(staging, ...relative.split('/'));
          const hadCurrent = Boolean(await lstat(live).catch(() => null));
          await mkdir(path.dirname(saved), { recursive: true });
          if (hadCurrent) await rename(live, saved);
          swapped.push({ relative, hadCurrent });
          if (await lstat(restored).catch(() => null)) {
            await mkdir(path.dirname(live), { recursive: true });
            await rename(restored, live);
          }
        }
      } catch (error) {
        // Put back what was swapped, newest first: the current files stay as they were.
        for (const { relative, hadCurrent } of swapped.reverse()) {
          const live = path.join(dockerDir, ...relative.split('/'));
          await rm(live, { recursive: true, force: true });
          if (hadCurrent) await rename(path.join(aside, ...relative.split('/')), live);
        }
        throw error;
      }
      await fsyncDirectory(dockerDir).catch(() => undefined);
      if (options.runHook !== false && row.hookFile) await runHook(dockerDir, 'restore.sh', [`--file=${row.hookFile}`]);
      return { files: extracted.files, paths: metadata.paths };
    } catch (error) {
      throw toNuwaxError(error, ErrorCodes.E_RESTORE);
    } finally {
      await rm(staging, { recursive: true, force: true });
      await rm(aside, { recursive: true, force: true });
    }
  }

  /**
   * Retention by count and/or age. Never deletes the newest complete backup, one in `keepIds`, nor
   * one an unfinished upgrade needs.
   */
  async prune(options: { keepIds?: number[]; now?: Date } = {}): Promise<BackupRow[]> {
    const { store } = this.options;
    const retention = this.options.retention ?? { count: 5 };
    const now = (options.now ?? new Date()).getTime();
    const keep = new Set(options.keepIds ?? []);
    const unfinished = store.upgrades.findUnfinished();
    if (unfinished?.backupId) keep.add(unfinished.backupId);
    const complete = store.backups.list().filter((row) => row.status === 'complete');
    if (complete[0]) keep.add(complete[0].id);
    const deleted: BackupRow[] = [];
    complete.forEach((row, index) => {
      if (keep.has(row.id)) return;
      const tooMany = retention.count !== undefined && index >= retention.count;
      const tooOld = retention.days !== undefined && now - Date.parse(row.createdAt) > retention.days * 86_400_000;
      if (tooMany || tooOld) deleted.push(row);
    });
    for (const row of deleted) {
      if (row.path) await rm(row.path, { force: true });
      store.backups.markDeleted(row.id);
      this.logger.info({ id: row.id }, 'pruned backup');
    }
    for (const row of store.backups.list().filter((item) => item.status === 'failed' && item.path)) await rm(row.path!, { force: true });
    return deleted;
  }
}
