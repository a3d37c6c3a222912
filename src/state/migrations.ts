/**
 * Ordered schema migrations, applied by PRAGMA user_version (SPEC 12). Append only: never edit a
 * migration that has shipped; add a new one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE deployment (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version TEXT,
    executed_scripts TEXT NOT NULL DEFAULT '[]',
    partial INTEGER NOT NULL DEFAULT 0,
    partial_detail TEXT,
    last_upgrade_id INTEGER,
    updated_at TEXT NOT NULL
  );
  CREATE TABLE downloads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER,
    hash TEXT NOT NULL,
    offset INTEGER NOT NULL DEFAULT 0,
    etag TEXT,
    last_modified TEXT,
    hash_state BLOB,
    status TEXT NOT NULL CHECK (status IN ('partial', 'complete', 'failed')),
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (hash)
  );
  CREATE TABLE backups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT,
    version TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('manual', 'pre-upgrade')),
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed', 'deleted')),
    size INTEGER,
    sha256 TEXT,
    files INTEGER,
    paths TEXT NOT NULL DEFAULT '[]',
    hook_file TEXT,
    upgrade_id INTEGER,
    error TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
  );
  CREATE TABLE upgrades (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    from_version TEXT,
    to_version TEXT,
    strategy TEXT,
    trigger TEXT NOT NULL,
    started_by TEXT,
    reason TEXT,
    status TEXT NOT NULL,
    step TEXT,
    backup_id INTEGER,
    recovery_attempts INTEGER NOT NULL DEFAULT 0,
    plan TEXT,
    result TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT
  );
  CREATE INDEX upgrades_status ON upgrades (status);
  CREATE TABLE journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    upgrade_id INTEGER NOT NULL REFERENCES upgrades (id),
    step TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'skipped', 'undone')),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    detail TEXT
  );
  CREATE INDEX journal_upgrade ON journal (upgrade_id, id);
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    upgrade_id INTEGER,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE INDEX events_upgrade ON events (upgrade_id, id);
  CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  `,
];
