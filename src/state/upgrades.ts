import { withOutcome } from '../events/index.js';
import { type Db, nowIso } from './db.js';

export type UpgradeStatus =
  | 'running'
  | 'success'
  | 'partial_success'
  | 'failed'
  | 'staged'
  | 'up_to_date'
  | 'abandoned';
export type JournalStatus = 'running' | 'done' | 'failed' | 'skipped' | 'undone';

export interface UpgradeRow {
  id: number;
  fromVersion: string | null;
  toVersion: string | null;
  strategy: string | null;
  trigger: string;
  startedBy: string | null;
  reason: string | null;
  status: UpgradeStatus;
  step: string | null;
  backupId: number | null;
  recoveryAttempts: number;
  plan: unknown;
  result: unknown;
  startedAt: string;
  finishedAt: string | null;
}

interface RawUpgrade {
  id: number;
  from_version: string | null;
  to_version: string | null;
  strategy: string | null;
  trigger: string;
  started_by: string | null;
  reason: string | null;
  status: UpgradeStatus;
  step: string | null;
  backup_id: number | null;
  recovery_attempts: number;
  plan: string | null;
  result: string | null;
  started_at: string;
  finished_at: string | null;
}

function fromRaw(row: RawUpgrade): UpgradeRow {
  return {
    id: row.id,
    fromVersion: row.from_version,
    toVersion: row.to_version,
    strategy: row.strategy,
    trigger: row.trigger,
    startedBy: row.started_by,
    reason: row.reason,
    status: row.status,
    step: row.step,
    backupId: row.backup_id,
    recoveryAttempts: row.recovery_attempts,
    plan: row.plan ? JSON.parse(row.plan) : null,
    result: row.result ? JSON.parse(row.result) : null,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

export interface JournalRow {
  id: number;
  upgradeId: number;
  step: string;
  status: JournalStatus;
  startedAt: string;
  finishedAt: string | null;
  detail: unknown;
}

export class UpgradeRepository {
  constructor(private readonly db: Db) {}

  begin(input: {
    fromVersion: string | null;
    toVersion: string | null;
    strategy: string | null;
    trigger: string;
    startedBy: string | null;
    reason: string | null;
    plan?: unknown;
  }): number {
    const result = this.db
      .prepare(
        `INSERT INTO upgrades
           (from_version, to_version, strategy, trigger, started_by, reason, status, plan, started_at)
         VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)`,
      )
      .run(
        input.fromVersion,
        input.toVersion,
        input.strategy,
        input.trigger,
        input.startedBy,
        input.reason,
        input.plan === undefined ? null : JSON.stringify(input.plan),
        nowIso(),
      );
    return Number(result.lastInsertRowid);
  }

  update(
    id: number,
    fields: Partial<Pick<UpgradeRow, 'step' | 'backupId' | 'recoveryAttempts' | 'plan' | 'strategy' | 'reason'>>,
  ): void {
    const columns: Record<string, unknown> = {};
    if (fields.step !== undefined) columns.step = fields.step;
    if (fields.backupId !== undefined) columns.backup_id = fields.backupId;
    if (fields.recoveryAttempts !== undefined) columns.recovery_attempts = fields.recoveryAttempts;
    if (fields.plan !== undefined) columns.plan = JSON.stringify(fields.plan);
    if (fields.strategy !== undefined) columns.strategy = fields.strategy;
    if (fields.reason !== undefined) columns.reason = fields.reason;
    const keys = Object.keys(columns);
    if (keys.length === 0) return;
    this.db
      .prepare(`UPDATE upgrades SET ${keys.map((key) => `${key} = @${key}`).join(', ')} WHERE id = @id`)
      .run({ ...columns, id });
  }

  /** Stores the result with its `outcome` (set on the object itself, so the caller returns the same). */
  finish<T extends { status: string }>(id: number, status: UpgradeStatus, result: T): void {
    this.db
      .prepare('UPDATE upgrades SET status = ?, result = ?, finished_at = ? WHERE id = ?')
      .run(status, JSON.stringify(withOutcome(result)), nowIso(), id);
  }

  /** Replaces the stored result of a finished upgrade (fields known only to the caller, as the decision's warnings). */
  amendResult<T extends { status: string }>(id: number, result: T): void {
    this.db.prepare('UPDATE upgrades SET result = ? WHERE id = ?').run(JSON.stringify(withOutcome(result)), id);
  }

  get(id: number): UpgradeRow | undefined {
    const row = this.db.prepare('SELECT * FROM upgrades WHERE id = ?').get(id) as RawUpgrade | undefined;
    return row ? fromRaw(row) : undefined;
  }

  /** The unfinished upgrade a crash left behind, if any (SPEC 9). */
  findUnfinished(): UpgradeRow | undefined {
    const row = this.db.prepare(`SELECT * FROM upgrades WHERE status = 'running' ORDER BY id DESC LIMIT 1`).get() as
      | RawUpgrade
      | undefined;
    return row ? fromRaw(row) : undefined;
  }

  list(limit = 20): UpgradeRow[] {
    return (this.db.prepare('SELECT * FROM upgrades ORDER BY id DESC LIMIT ?').all(limit) as RawUpgrade[]).map(fromRaw);
  }

  /** The newest switch of versions, upgrades and rollbacks; a repair is in history but changes no version. */
  listVersionChanges(limit = 20): UpgradeRow[] {
    return (
      this.db
        .prepare(`SELECT * FROM upgrades WHERE trigger != 'repair' ORDER BY id DESC LIMIT ?`)
        .all(limit) as RawUpgrade[]
    ).map(fromRaw);
  }

  /** Journal: one row per step attempt, written before the step runs. */
  startStep(upgradeId: number, step: string, detail?: unknown): number {
    return this.db.transaction(() => {
      const result = this.db
        .prepare(`INSERT INTO journal (upgrade_id, step, status, started_at, detail) VALUES (?, ?, 'running', ?, ?)`)
        .run(upgradeId, step, nowIso(), detail === undefined ? null : JSON.stringify(detail));
      this.db.prepare('UPDATE upgrades SET step = ? WHERE id = ?').run(step, upgradeId);
      return Number(result.lastInsertRowid);
    })();
  }

  finishStep(journalId: number, status: Exclude<JournalStatus, 'running'>, detail?: unknown): void {
    this.db
      .prepare('UPDATE journal SET status = ?, finished_at = ?, detail = COALESCE(?, detail) WHERE id = ?')
      .run(status, nowIso(), detail === undefined ? null : JSON.stringify(detail), journalId);
  }

  journal(upgradeId: number): JournalRow[] {
    const rows = this.db.prepare('SELECT * FROM journal WHERE upgrade_id = ? ORDER BY id').all(upgradeId) as Array<{
      id: number;
      upgrade_id: number;
      step: string;
      status: JournalStatus;
      started_at: string;
      finished_at: string | null;
      detail: string | null;
    }>;
    return rows.map((row) => ({
      id: row.id,
      upgradeId: row.upgrade_id,
      step: row.step,
      status: row.status,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
      detail: row.detail ? JSON.parse(row.detail) : null,
    }));
  }

  recordEvent(upgradeId: number | null, type: string, data: unknown): void {
    this.db
      .prepare('INSERT INTO events (upgrade_id, type, data, created_at) VALUES (?, ?, ?, ?)')
      .run(upgradeId, type, JSON.stringify(data), nowIso());
  }

  events(upgradeId: number): Array<{ type: string; data: unknown; createdAt: string }> {
    const rows = this.db
      .prepare('SELECT type, data, created_at FROM events WHERE upgrade_id = ? ORDER BY id')
      .all(upgradeId) as Array<{
      type: string;
      data: string;
      created_at: string;
    }>;
    return rows.map((row) => ({ type: row.type, data: JSON.parse(row.data), createdAt: row.created_at }));
  }
}
