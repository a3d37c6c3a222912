import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { checkArchive, createTarGz, extractArchive } from '../archive/index.js';
import { ErrorCodes, isNuwaxError, NuwaxError, toNuwaxError } from '../errors/index.js';
import type { ProgressListener } from '../events/index.js';
import { checkRelativePath, ensureFreeSpace, exists, treeSize, whenAbsent } from '../fsutil/index.js';
import { type Logger, silentLogger } from '../log/index.js';
import type { BackupKind, BackupRow, Store } from '../state/index.js';
import { runHook } from './hooks.js';
import { removeStaleRestoreFolders, removeStaleTemporaries, restoreFolders } from './housekeeping.js';
import { swapIn } from './swap.js';

export { runHook };

/** Inside every archive: what it covers, so that a restore works even without the database. */
export const METADATA_ENTRY = '.nuwax-backup.json';
/** Kept free beyond the estimate: the database and logs must still be writable afterwards. */
const MARGIN = 64 * 1024 * 1024;

export interface BackupMetadata {
  id: number;
  version: string | null;
  /** Covered paths, relative to docker/. */
  paths: string[];
  /** Covered paths that did not exist at backup time: a restore removes them. */
  absent: string[];
  created_at: string;
  /** What docker/backup.sh reported, handed to restore.sh. */
  hook_file?: string | null;
}

export interface RestoreOptions {
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Run docker/restore.sh when the backup ran backup.sh (default true). */
  runHook?: boolean;
}

export interface BackupServiceOptions {
  home: string;
  dockerDir: string;
  backupsDir: string;
  store: Store;
  logger?: Logger;
  /** gzip level 0-9 (`[backup] compression`, default 6). */
  compression?: number;
  /** `[backup] retention`; default 5 backups. */
  retention?: { count?: number | undefined; days?: number | undefined };
}

export interface CreateBackupRequest {
  /** Relative to docker/. */
  paths: string[];
  kind: BackupKind;
  version: string | null;
  upgradeId?: number | null;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Run docker/backup.sh when it exists (default true). */
  runHook?: boolean;
  /** backup.sh ran already (while the services still ran) and reported this file: recorded, not run again. */
  hookFile?: string | null;
}

/**
 * The restored files are written without an fsync each (one per file would cost more than the
 * extraction): one syncfs of the filesystem makes them durable before the old tree is deleted.
 */
async function syncFilesystem(directory: string): Promise<void> {
  if (process.platform === 'win32') return;
  await promisify(execFile)('sync', ['-f', directory], { timeout: 600_000 });
}

/** `rm -rf` in a process of its own: fs.rm's recursion grows this process's memory with the tree. */
async function removeTree(directory: string): Promise<void> {
  if (process.platform === 'win32') return rm(directory, { recursive: true, force: true });
  await promisify(execFile)('rm', ['-rf', '--', directory], { timeout: 3_600_000 });
}

/** Checked, without duplicates, and outermost only: `app` covers `app/config`. */
function normalisePaths(paths: string[]): string[] {
  const checked = [...new Set(paths.map((item) => checkRelativePath(item, 'backup path')))].sort();
  return checked.filter((item) => !checked.some((other) => other !== item && item.startsWith(`${other}/`)));
}

/** Backups (SPEC 8, 12): streaming tar.gz archives recorded in SQLite, verified, restorable, pruned. */
export class BackupService {
  private readonly logger: Logger;
  /** Deletions of the trees restores set aside, running after the restore returned. */
  private readonly deletions = new Set<Promise<void>>();

  constructor(private readonly options: BackupServiceOptions) {
    this.logger = options.logger ?? silentLogger;
  }

  /** Resolves when the old trees of earlier restores are deleted (the process waits for them anyway). */
  async settled(): Promise<void> {
    await Promise.all([...this.deletions]);
  }

  /**
   * The replaced tree is deleted off the critical path: a rollback starts the old version while it
   * goes (deleting a large data dir costs as much as extracting it). A restore killed meanwhile
   * leaves a folder that the next restore removes (removeStaleRestoreFolders).
   */
  private deleteAside(aside: string): void {
    const deletion = syncFilesystem(this.options.dockerDir)
      .then(
        () => removeTree(aside),
        (error: unknown) =>
          // Not durable yet: the old tree stays until the next restore removes it.
          this.logger.warn({ err: error, folder: aside }, 'could not sync the restored tree; kept the replaced one'),
      )
      .catch((error: unknown) => this.logger.warn({ err: error, folder: aside }, 'could not delete the replaced tree'))
      .finally(() => this.deletions.delete(deletion));
    this.deletions.add(deletion);
  }

  /** Newest first, without deleted ones. */
  list(): BackupRow[] {
    return this.options.store.backups.list();
  }

  /**
   * docker/backup.sh first when it exists, then our own archive of `paths` (temp name, fsync,
   * rename; 0600 in a 0700 folder). A failure leaves no archive and a `failed` record.
   */
  async create(request: CreateBackupRequest): Promise<BackupRow> {
    const { store, dockerDir, backupsDir } = this.options;
    const paths = normalisePaths(request.paths);
    const id = store.backups.begin({
      version: request.version,
      kind: request.kind,
      paths,
      upgradeId: request.upgradeId ?? null,
    });
    const file = path.join(backupsDir, `backup-${id}-${new Date().toISOString().replace(/[:.]/g, '-')}.tar.gz`);
    this.logger.info({ id, paths, kind: request.kind }, 'backup started');
    try {
      await mkdir(backupsDir, { recursive: true, mode: 0o700 });
      await chmod(backupsDir, 0o700);
      await removeStaleTemporaries(backupsDir, store, this.logger);
      const hook =
        request.hookFile !== undefined
          ? { file: request.hookFile }
          : request.runHook === false
            ? null
            : await runHook(dockerDir, 'backup.sh', [], { signal: request.signal });
      const absent: string[] = [];
      let estimate = 0;
      for (const relative of paths) {
        const absolute = path.join(dockerDir, ...relative.split('/'));
        if (!(await exists(absolute))) absent.push(relative);
        estimate += await treeSize(absolute);
      }
      // Incompressible data grows a little in gzip; tar adds a block per entry.
      await ensureFreeSpace(backupsDir, Math.ceil(estimate * 1.01) + MARGIN, `backup #${id}`);
      const hookFile = typeof hook?.file === 'string' ? hook.file : null;
      const metadata: BackupMetadata = {
        id,
        version: request.version,
        paths,
        absent,
        created_at: new Date().toISOString(),
        hook_file: hookFile,
      };
      const created = await createTarGz(dockerDir, paths, file, {
        level: this.options.compression ?? 6,
        mode: 0o600,
        step: 'backing_up',
        extraEntries: [{ name: METADATA_ENTRY, content: Buffer.from(`${JSON.stringify(metadata)}\n`) }],
        signal: request.signal,
        onProgress: request.onProgress,
      });
      if (created.skipped.length > 0)
        this.logger.warn({ id, skipped: created.skipped }, 'sockets, fifos and devices are not backed up');
      store.backups.complete(id, {
        path: file,
        size: created.size,
        sha256: created.sha256,
        files: created.files,
        hookFile,
      });
      this.logger.info({ id, file, size: created.size, files: created.files }, 'backup complete');
      return store.backups.get(id)!;
    } catch (caught) {
      const error = toNuwaxError(caught, ErrorCodes.E_BACKUP);
      await rm(file, { force: true });
      store.backups.fail(id, `${error.code}: ${error.message}`);
      this.logger.error({ id, code: error.code, err: error.message }, 'backup failed');
      throw error;
    }
  }

  /**
   * docker/backup.sh alone (SPEC 8: it runs while the services still run); the file it reported,
   * null when there is no backup.sh. Hand the file to create() as `hookFile`.
   */
  async runBackupHook(options: { signal?: AbortSignal } = {}): Promise<string | null> {
    const hook = await runHook(this.options.dockerDir, 'backup.sh', [], { signal: options.signal });
    return typeof hook?.file === 'string' ? hook.file : null;
  }

  /**
   * docker/restore.sh alone, with the file backup.sh reported for backup `id`: after a restore
   * that left it out (runHook: false), so that its failure is told apart from nuwax's own restore.
   * Null when that backup ran no backup.sh.
   */
  async runRestoreHook(id: number, options: { signal?: AbortSignal } = {}): Promise<{ file: string } | null> {
    const hookFile = this.completeRow(id).hookFile;
    if (!hookFile) return null;
    try {
      await runHook(this.options.dockerDir, 'restore.sh', [`--file=${hookFile}`], { signal: options.signal });
    } catch (error) {
      const failure = toNuwaxError(error, ErrorCodes.E_RESTORE);
      throw new NuwaxError(failure.code, failure.message, {
        cause: error,
        details: { ...(failure.details as Record<string, unknown> | undefined), file: hookFile },
      });
    }
    return { file: hookFile };
  }

  private completeRow(id: number): BackupRow & { path: string; sha256: string } {
    const row = this.options.store.backups.get(id);
    if (row?.status !== 'complete' || !row.path || !row.sha256)
      throw new NuwaxError(ErrorCodes.E_BACKUP_NOT_FOUND, `Backup #${id} does not exist or is not complete`, {
        details: { id },
      });
    return row as BackupRow & { path: string; sha256: string };
  }

  /** Re-reads the archive once: its sha256 against the record, and every entry to its end. */
  async verify(
    id: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ ok: true; entries: number; sha256: string }> {
    const row = this.completeRow(id);
    if (!(await stat(row.path).catch(whenAbsent(null))))
      throw new NuwaxError(ErrorCodes.E_BACKUP, `Backup #${id}: its archive ${row.path} is missing`, {
        details: { id, path: row.path },
      });
    let checked: { entries: number; sha256: string };
    try {
      checked = await checkArchive(row.path, options);
    } catch (error) {
      if (isNuwaxError(error, ErrorCodes.E_ABORTED)) throw error;
      throw new NuwaxError(ErrorCodes.E_BACKUP, `Backup #${id} is unreadable: ${(error as Error).message}`, {
        cause: error,
        details: { id, path: row.path },
      });
    }
    if (checked.sha256 !== row.sha256) {
      throw new NuwaxError(
        ErrorCodes.E_BACKUP,
        `Backup #${id} is corrupted: its sha256 is ${checked.sha256}, ${row.sha256} was recorded`,
        { details: { id, expected: row.sha256, actual: checked.sha256 } },
      );
    }
    return { ok: true, entries: checked.entries, sha256: checked.sha256 };
  }

  /**
   * Every covered path is replaced whole by its archived content; one absent at backup time is
   * removed. The archive is extracted (its sha256 checked against the record in the same pass)
   * into a staging folder beside docker/, then swapped in by renames, so a restore that fails
   * midway leaves the current files as they were. Needs no compose file, nor docker/ itself.
   * Then docker/restore.sh when the backup ran backup.sh.
   */
  async restore(id: number, options: RestoreOptions = {}): Promise<{ files: number; paths: string[] }> {
    const row = this.completeRow(id);
    return this.restoreArchive(row.path, { ...options, id, sha256: row.sha256, fallback: row });
  }

  /** Restores from an archive file alone, described by its metadata entry (database lost). */
  async restoreFile(file: string, options: RestoreOptions = {}): Promise<{ files: number; paths: string[] }> {
    return this.restoreArchive(path.resolve(file), { ...options, id: 0, sha256: null, fallback: null });
  }

  private async restoreArchive(
    file: string,
    options: RestoreOptions & { id: number; sha256: string | null; fallback: BackupRow | null },
  ): Promise<{ files: number; paths: string[] }> {
    const { dockerDir } = this.options;
    const parent = path.dirname(path.resolve(dockerDir));
    await removeStaleRestoreFolders(parent, this.logger);
    const { staging, aside } = restoreFolders(parent, options.id);
    this.logger.info({ id: options.id, file }, 'restore started');
    let swapped = false;
    try {
      await rm(staging, { recursive: true, force: true });
      await this.settled();
      await rm(aside, { recursive: true, force: true });
      const extracted = await this.extract(file, staging, options);
      const metadata = await this.readMetadata(staging, options.fallback);
      await mkdir(dockerDir, { recursive: true });
      await swapIn(dockerDir, staging, aside, metadata.paths);
      swapped = true;
      this.deleteAside(aside);
      const hookFile = options.fallback ? options.fallback.hookFile : (metadata.hook_file ?? null);
      if (options.runHook !== false && hookFile)
        await runHook(dockerDir, 'restore.sh', [`--file=${hookFile}`], { signal: options.signal });
      this.logger.info({ id: options.id, files: extracted.files }, 'restore complete');
      return { files: extracted.files, paths: metadata.paths };
    } catch (error) {
      const failure = toNuwaxError(error, ErrorCodes.E_RESTORE);
      this.logger.error({ id: options.id, code: failure.code, err: failure.message }, 'restore failed');
      throw failure;
    } finally {
      await rm(staging, { recursive: true, force: true });
      if (!swapped) await rm(aside, { recursive: true, force: true });
    }
  }

  private async extract(
    file: string,
    staging: string,
    options: RestoreOptions & { id: number; sha256: string | null },
  ) {
    const what = options.id ? `Backup #${options.id}` : path.basename(file);
    try {
      return await extractArchive(file, staging, {
        step: 'rolling_back',
        sha256: options.sha256 ?? undefined,
        // A recorded backup is our own archive, its sha256 checked in the same pass: no ratio bound (a
        // database's files compress far past 20x), only the free space. A bare file keeps the ratio.
        maxRatio: options.sha256 ? null : undefined,
        signal: options.signal,
        onProgress: options.onProgress,
      });
    } catch (error) {
      const failure = toNuwaxError(error, ErrorCodes.E_RESTORE);
      if (failure.code === ErrorCodes.E_HASH_MISMATCH)
        throw new NuwaxError(ErrorCodes.E_BACKUP, `${what} is corrupted: ${failure.message}; nothing was restored`, {
          cause: error,
          details: { id: options.id, file },
        });
      if (failure.code === ErrorCodes.E_ARCHIVE)
        throw new NuwaxError(ErrorCodes.E_BACKUP, `${what} is unreadable: ${failure.message}; nothing was restored`, {
          cause: error,
          details: { id: options.id, file },
        });
      throw failure;
    }
  }

  /** The archive's own description; the record's paths for an archive without one. */
  private async readMetadata(staging: string, fallback: BackupRow | null): Promise<BackupMetadata> {
    const text = await readFile(path.join(staging, METADATA_ENTRY), 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (text === null && !fallback)
      throw new NuwaxError(ErrorCodes.E_BACKUP, `The archive has no ${METADATA_ENTRY}: it is not a nuwax backup`);
    const metadata =
      text === null
        ? {
            id: fallback!.id,
            version: fallback!.version,
            paths: fallback!.paths,
            absent: [],
            created_at: fallback!.createdAt,
          }
        : (JSON.parse(text) as BackupMetadata);
    if (!Array.isArray(metadata.paths)) throw new NuwaxError(ErrorCodes.E_BACKUP, `${METADATA_ENTRY} lists no paths`);
    return { ...metadata, paths: normalisePaths(metadata.paths) };
  }

  /**
   * Retention by count and/or age. Never deletes the newest complete backup, one in `keepIds`,
   * nor the one an unfinished upgrade needs. Returns what was deleted.
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
    const deleted = complete.filter((row, index) => {
      if (keep.has(row.id)) return false;
      const tooMany = retention.count !== undefined && index >= retention.count;
      const tooOld = retention.days !== undefined && now - Date.parse(row.createdAt) > retention.days * 86_400_000;
      return tooMany || tooOld;
    });
    for (const row of deleted) {
      if (row.path) await rm(row.path, { force: true });
      store.backups.markDeleted(row.id);
      this.logger.info({ id: row.id, path: row.path }, 'pruned backup');
    }
    return deleted;
  }
}
