import { type Db, nowIso } from './db.js';

export type DownloadStatus = 'partial' | 'complete' | 'failed';

export interface DownloadRow {
  id: number;
  url: string;
  path: string;
  size: number | null;
  /** Lower-case hex SHA-256 of the whole file: the identity of a download. */
  hash: string;
  offset: number;
  etag: string | null;
  lastModified: string | null;
  hashState: Buffer | null;
  status: DownloadStatus;
  error: string | null;
  createdAt: string;
  updatedAt: string;
}

interface RawDownload {
  id: number;
  url: string;
  path: string;
  size: number | null;
  hash: string;
  offset: number;
  etag: string | null;
  last_modified: string | null;
  hash_state: Buffer | null;
  status: DownloadStatus;
  error: string | null;
  created_at: string;
  updated_at: string;
}

function fromRaw(row: RawDownload): DownloadRow {
  return {
    id: row.id,
    url: row.url,
    path: row.path,
    size: row.size,
    hash: row.hash,
    offset: row.offset,
    etag: row.etag,
    lastModified: row.last_modified,
    hashState: row.hash_state,
    status: row.status,
    error: row.error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export type DownloadInput = Omit<DownloadRow, 'id' | 'createdAt' | 'updatedAt'>;

export class DownloadRepository {
  constructor(private readonly db: Db) {}

  findByHash(hash: string): DownloadRow | undefined {
    const row = this.db.prepare('SELECT * FROM downloads WHERE hash = ?').get(hash.toLowerCase()) as
      | RawDownload
      | undefined;
    return row ? fromRaw(row) : undefined;
  }

  /** Upsert keyed by hash. */
  save(input: DownloadInput): DownloadRow {
    const now = nowIso();
    this.db
      .prepare(
        `INSERT INTO downloads
           (url, path, size, hash, offset, etag, last_modified, hash_state, status, error, created_at, updated_at)
         VALUES (@url, @path, @size, @hash, @offset, @etag, @last_modified, @hash_state, @status, @error, @now, @now)
         ON CONFLICT (hash) DO UPDATE SET url = excluded.url, path = excluded.path, size = excluded.size,
           offset = excluded.offset, etag = excluded.etag, last_modified = excluded.last_modified,
           hash_state = excluded.hash_state, status = excluded.status, error = excluded.error,
           updated_at = excluded.updated_at`,
      )
      .run({
        url: input.url,
        path: input.path,
        size: input.size,
        hash: input.hash.toLowerCase(),
        offset: input.offset,
        etag: input.etag,
        last_modified: input.lastModified,
        hash_state: input.hashState,
        status: input.status,
        error: input.error,
        now,
      });
    return this.findByHash(input.hash)!;
  }

  /** Hot path during a download: only the offset (and optional hash state) move. */
  updateProgress(hash: string, offset: number, hashState: Buffer | null = null): void {
    this.db
      .prepare('UPDATE downloads SET offset = ?, hash_state = ?, updated_at = ? WHERE hash = ?')
      .run(offset, hashState, nowIso(), hash.toLowerCase());
  }

  list(): DownloadRow[] {
    return (this.db.prepare('SELECT * FROM downloads ORDER BY id').all() as RawDownload[]).map(fromRaw);
  }

  remove(hash: string): void {
    this.db.prepare('DELETE FROM downloads WHERE hash = ?').run(hash.toLowerCase());
  }
}
