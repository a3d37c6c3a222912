/**
 * One row of the Performance table: each benchmark prints its rows with `reportRow`, and
 * `npm run bench` (all.ts) gathers them into one table, each row beside its goal.
 */
export interface Row {
  /** What is measured, e.g. "verified download, 1 GiB". */
  what: string;
  /** The standard tool and its figure in the same run. */
  standard: string;
  /** nuwax's figure (medians, ratio, peak RSS). */
  nuwax: string;
  /** The goal, e.g. ">= 1.0x, <= 80 MiB". */
  goal: string;
  met: boolean;
  /** The figures of each run, one string per run. */
  runs: string[];
}

export const ROW_PREFIX = '@@row ';

export function reportRow(row: Row): void {
  console.log(`${ROW_PREFIX}${JSON.stringify(row)}`);
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
