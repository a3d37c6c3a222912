import path from 'node:path';
import { BackupRepository } from './backups.js';
import { type Db, openDatabase } from './db.js';
import { DeploymentRepository } from './deployment.js';
import { DownloadRepository } from './downloads.js';
import { KeyValueRepository } from './kv.js';
import { UpgradeRepository } from './upgrades.js';

export { type CheckRecord, lastCheck, recordCheck, recordingCheck } from './checks.js';
export { boxClientId, SERVER_CLIENT_ID_KEY } from './client-id.js';
export type { BackupKind, BackupRow, BackupStatus } from './backups.js';
export type { DeploymentRow } from './deployment.js';
export type { DownloadInput, DownloadRow, DownloadStatus } from './downloads.js';
export type { JournalRow, JournalStatus, UpgradeRow, UpgradeStatus } from './upgrades.js';

/** The state store (SPEC 12): the only owner of the database; everything else calls its repositories. */
export class Store {
  readonly deployment: DeploymentRepository;
  readonly downloads: DownloadRepository;
  readonly backups: BackupRepository;
  readonly upgrades: UpgradeRepository;
  readonly kv: KeyValueRepository;

  constructor(
    readonly db: Db,
    readonly file: string,
  ) {
    this.deployment = new DeploymentRepository(db);
    this.downloads = new DownloadRepository(db);
    this.backups = new BackupRepository(db);
    this.upgrades = new UpgradeRepository(db);
    this.kv = new KeyValueRepository(db);
  }

  /** The installed version: the store is the truth once nuwax has committed; before that, config.toml's. */
  installedVersion(fromConfig: string | undefined): string | null {
    return this.deployment.get().version ?? fromConfig ?? null;
  }

  /** Runs `work` in one transaction: changes that must hold together. */
  transaction<T>(work: () => T): T {
    return this.db.transaction(work)();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

export function openStore(file: string): Store {
  return new Store(openDatabase(file), file);
}

/**
 * An in-memory store holding a copy of `store`'s small facts (the deployment row; kv: staged release,
 * client id, manifest cache): a dry run hands it to code that records as it reads (doctor, the
 * check), so the box's store is unchanged.
 */
export function scratchCopyOf(store: Store): Store {
  const copy = openStore(':memory:');
  copy.transaction(() => {
    for (const table of ['deployment', 'kv']) {
      copy.db.prepare(`DELETE FROM ${table}`).run();
      for (const row of store.db.prepare(`SELECT * FROM ${table}`).all() as Array<Record<string, unknown>>) {
        const columns = Object.keys(row);
        copy.db
          .prepare(
            `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((name) => `@${name}`).join(', ')})`,
          )
          .run(row);
      }
    }
  });
  return copy;
}

export function storePathFor(home: string): string {
  return path.join(home, 'data', 'nuwax.db');
}
