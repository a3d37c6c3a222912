import { type FileHandle, mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { exists, fsyncDirectory } from '../fsutil/index.js';

/**
 * The write-ahead undo journal of an apply: JSON lines, each fsynced before the change it
 * describes. A line is written before its rename, so after a kill -9 the journal lists every
 * change that may have happened; undo checks on disk whether each one did (SPEC 9).
 */
export type MoveStep =
  /** Create an empty directory docker/<path> (a parent the package needs). */
  | { op: 'mkdir'; path: string }
  /** Rename docker/<path> to <undo>/originals/<seq>. */
  | { op: 'remove'; path: string }
  /** Rename <staged>/<path> to docker/<path>. */
  | { op: 'install'; path: string };

export type JournalStep = MoveStep & { seq: number };

export interface JournalHeader {
  journal: 'nuwax-undo';
  version: 1;
  dockerDir: string;
  stagedRoot: string;
  startedAt: string;
}

export interface JournalContents {
  header: JournalHeader | null;
  steps: JournalStep[];
  undone: Set<number>;
}

export const JOURNAL_FILE = 'journal.jsonl';

export function originalPath(undoDir: string, seq: number): string {
  return path.join(undoDir, 'originals', String(seq));
}

export function discardPath(undoDir: string, seq: number): string {
  return path.join(undoDir, 'discard', String(seq));
}

export class UndoJournal {
  private constructor(private readonly handle: FileHandle) {}

  /** Starts a journal in a new undo folder; refuses a folder that already holds one. */
  static async create(undoDir: string, header: Omit<JournalHeader, 'journal' | 'version'>): Promise<UndoJournal> {
    const file = path.join(undoDir, JOURNAL_FILE);
    if (await exists(file)) {
      throw new NuwaxError(
        ErrorCodes.E_APPLY,
        `${undoDir} holds the journal of an earlier apply: undo or discard it first`,
        { details: { undoDir } },
      );
    }
    await mkdir(path.join(undoDir, 'originals'), { recursive: true });
    await fsyncDirectory(path.dirname(undoDir));
    const journal = new UndoJournal(await open(file, 'wx', 0o600));
    await journal.write({ journal: 'nuwax-undo', version: 1, ...header });
    await fsyncDirectory(undoDir);
    await fsyncDirectory(path.join(undoDir, 'originals'));
    return journal;
  }

  /** Opens an existing journal to record undo progress. */
  static async reopen(undoDir: string): Promise<UndoJournal> {
    return new UndoJournal(await open(path.join(undoDir, JOURNAL_FILE), 'a'));
  }

  /** Appends records and fsyncs them: when this returns they survive a power loss. */
  async writeAll(records: object[], durable = true): Promise<void> {
    if (records.length === 0) return;
    await this.handle.write(records.map((record) => `${JSON.stringify(record)}\n`).join(''));
    if (durable) await this.handle.sync();
  }

  async write(record: object, durable = true): Promise<void> {
    await this.writeAll([record], durable);
  }

  sync(): Promise<void> {
    return this.handle.sync();
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

function isStep(value: Record<string, unknown>): value is JournalStep {
  return (
    typeof value.seq === 'number' &&
    typeof value.path === 'string' &&
    (value.op === 'mkdir' || value.op === 'remove' || value.op === 'install')
  );
}

/**
 * Reads a journal, or null when the folder holds none. A torn last line (kill -9 mid-write) is dropped: its change
 * never started.
 */
export async function readJournal(undoDir: string): Promise<JournalContents | null> {
  let text: string;
  try {
    text = await readFile(path.join(undoDir, JOURNAL_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new NuwaxError(
      ErrorCodes.E_ROLLBACK,
      `Cannot read the undo journal in ${undoDir}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  // The last element is '' after a final newline, or a torn line: either way it is dropped.
  const complete = text.split('\n').slice(0, -1);
  const records: Array<Record<string, unknown>> = [];
  for (const [index, line] of complete.entries()) {
    try {
      records.push(JSON.parse(line) as Record<string, unknown>);
    } catch (error) {
      throw new NuwaxError(ErrorCodes.E_ROLLBACK, `The undo journal in ${undoDir} is corrupt at line ${index + 1}`, {
        cause: error,
        details: { undoDir },
      });
    }
  }
  // A header torn by a kill: the apply had not started any change.
  if (records.length === 0) return { header: null, steps: [], undone: new Set() };
  const header = records[0] as unknown as JournalHeader;
  if (header.journal !== 'nuwax-undo') {
    throw new NuwaxError(ErrorCodes.E_ROLLBACK, `${path.join(undoDir, JOURNAL_FILE)} is not a nuwax undo journal`, {
      details: { undoDir },
    });
  }
  const steps: JournalStep[] = [];
  const undone = new Set<number>();
  for (const record of records.slice(1)) {
    if (typeof record.undone === 'number') undone.add(record.undone);
    else if (isStep(record)) steps.push(record);
  }
  return { header, steps, undone };
}
