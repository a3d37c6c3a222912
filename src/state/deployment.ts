import { type Db, nowIso } from './db.js';

export interface DeploymentRow {
  version: string | null;
  executedScripts: string[];
  partial: boolean;
  partialDetail: unknown;
  lastUpgradeId: number | null;
  updatedAt: string | null;
}

interface RawDeployment {
  version: string | null;
  executed_scripts: string;
  partial: number;
  partial_detail: string | null;
  last_upgrade_id: number | null;
  updated_at: string;
}

export class DeploymentRepository {
  constructor(private readonly db: Db) {}

  get(): DeploymentRow {
    const row = this.db.prepare('SELECT * FROM deployment WHERE id = 1').get() as RawDeployment | undefined;
    if (!row)
      return {
        version: null,
        executedScripts: [],
        partial: false,
        partialDetail: null,
        lastUpgradeId: null,
        updatedAt: null,
      };
    return {
      version: row.version,
      executedScripts: JSON.parse(row.executed_scripts) as string[],
      partial: row.partial === 1,
      partialDetail: row.partial_detail ? JSON.parse(row.partial_detail) : null,
      lastUpgradeId: row.last_upgrade_id,
      updatedAt: row.updated_at,
    };
  }

  save(update: Partial<Omit<DeploymentRow, 'updatedAt'>>): DeploymentRow {
    const merged = { ...this.get(), ...update };
    this.db
      .prepare(
        `INSERT INTO deployment (id, version, executed_scripts, partial, partial_detail, last_upgrade_id, updated_at)
         VALUES (1, @version, @executed_scripts, @partial, @partial_detail, @last_upgrade_id, @updated_at)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, executed_scripts = excluded.executed_scripts,
           partial = excluded.partial, partial_detail = excluded.partial_detail,
           last_upgrade_id = excluded.last_upgrade_id, updated_at = excluded.updated_at`,
      )
      .run({
        version: merged.version,
        executed_scripts: JSON.stringify(merged.executedScripts),
        partial: merged.partial ? 1 : 0,
        partial_detail: merged.partialDetail == null ? null : JSON.stringify(merged.partialDetail),
        last_upgrade_id: merged.lastUpgradeId,
        updated_at: nowIso(),
      });
    return this.get();
  }
}
