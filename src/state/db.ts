import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

export function nowIso(): string {
  return new Date().toISOString();
}

/** Opens (creating if needed) the state database with WAL and synchronous=FULL, then migrates it. */
export function openDatabase(file: string): Db {
  mkdirSync(path.dirname(file), { recursive: true });
  let db: Db;
  try {
    db = new Database(file);
  } catch (error) {
    throw new NuwaxError(ErrorCodes.E_STATE, `Cannot open the state database ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  db.pragma('journal_mode = WAL');
  // FULL: a committed journal row survives power loss, which crash recovery (SPEC 9) depends on.
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db, file);
  return db;
}

function migrate(db: Db, file: string): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new NuwaxError(
      ErrorCodes.E_STATE,
      `${file} has schema version ${current}, newer than this nuwax understands (${MIGRATIONS.length}); upgrade nuwax`,
    );
  }
  for (let version = current; version < MIGRATIONS.length; version += 1) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
