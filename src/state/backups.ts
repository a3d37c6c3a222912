import { type Db, nowIso } from './db.js';

export type BackupKind = 'manual' | 'pre-upgrade';
export type BackupStatus = 'running' | 'complete' | 'failed' | 'deleted';

export interface BackupRow {
  id: number;
  path: string | null;
  version: string | null;
  kind: BackupKind;
  status: BackupStatus;
  size: number | null;
  sha256: string | null;
  files: number | null;
  /** Top-level paths (relative to docker/) the archive holds. */
  paths: string[];
  /** File reported by docker/backup.sh, when the hook made the backup. */
  hookFile: string | null;
  upgradeId: number | null;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
}

interface RawBackup {
  id: number;
  path: string | null;
  version: string | null;
  kind: BackupKind;
  status: BackupStatus;
  size: number | null;
  sha256: string | null;
  files: number | null;
  paths: string;
  hook_file: string | null;
  upgrade_id: number | null;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

function fromRaw(row: RawBackup): BackupRow {
  return {
    id: row.id,
    path: row.path,
    version: row.version,
    kind: row.kind,
    status: row.status,
    size: row.size,
    sha256: row.sha256,
    files: row.files,
    paths: JSON.parse(row.paths) as string[],
    hookFile: row.hook_file,
    upgradeId: row.upgrade_id,
    error: row.error,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

export class BackupRepository {
  constructor(private readonly db: Db) {}

  /** Records a backup that is starting; returns its id. */
  begin(input: { version: string | null; kind: BackupKind; paths: string[]; upgradeId?: number | null }): number {
    const result = this.db
      .prepare(
        `INSERT INTO backups (version, kind, status, paths, upgrade_id, created_at)
         VALUES (?, ?, 'running', ?, ?, ?)`,
      )
      .run(input.version, input.kind, JSON.stringify(input.paths), input.upgradeId ?? null, nowIso());
    return Number(result.lastInsertRowid);
  }

  complete(
    id: number,
    facts: {
      path: string | null;
      size: number | null;
      sha256: string | null;
      files: number | null;
      hookFile?: string | null;
    },
  ): void {
    this.db
      .prepare(
        `UPDATE backups SET status = 'complete', path = ?, size = ?, sha256 = ?, files = ?, hook_file = ?,
           finished_at = ? WHERE id = ?`,
      )
      .run(facts.path, facts.size, facts.sha256, facts.files, facts.hookFile ?? null, nowIso(), id);
  }

  fail(id: number, error: string): void {
    this.db
      .prepare(`UPDATE backups SET status = 'failed', error = ?, finished_at = ? WHERE id = ?`)
      .run(error, nowIso(), id);
  }

  markDeleted(id: number): void {
    this.db.prepare(`UPDATE backups SET status = 'deleted' WHERE id = ?`).run(id);
  }

  get(id: number): BackupRow | undefined {
    const row = this.db.prepare('SELECT * FROM backups WHERE id = ?').get(id) as RawBackup | undefined;
    return row ? fromRaw(row) : undefined;
  }

  /** Newest first. */
  list(options: { includeDeleted?: boolean } = {}): BackupRow[] {
    const sql = options.includeDeleted
      ? 'SELECT * FROM backups ORDER BY id DESC'
      : `SELECT * FROM backups WHERE status != 'deleted' ORDER BY id DESC`;
    return (this.db.prepare(sql).all() as RawBackup[]).map(fromRaw);
  }
}
