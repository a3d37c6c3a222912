/**
 * `nuwax status` start-up time against `node -e 0` in the same run (the goal: well under half a
 * second). Prints medians of several runs and the ratio.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, reportRow } from './report.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const runs = Number(process.env.RUNS ?? 9);

function time(args: string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { stdio: 'ignore' });
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const home = mkdtempSync(path.join(os.tmpdir(), 'nuwax-bench-status-'));
// A read-only command refuses a home without config.toml.
writeFileSync(path.join(home, 'config.toml'), '[versions]\ndocker_service = "1.0.0"\n');
try {
  time([cli, '--home', home, 'status']);
  const node: number[] = [];
  const status: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    node.push(time(['-e', '0']));
    status.push(time([cli, '--home', home, 'status']));
  }
  const nodeMs = median(node);
  const statusMs = median(status);
  console.log(`node -e 0        median ${nodeMs.toFixed(0)} ms`);
  console.log(
    `nuwax status     median ${statusMs.toFixed(0)} ms (${(statusMs / nodeMs).toFixed(2)}x node -e 0; target < 500 ms)`,
  );
  reportRow({
    what: '`nuwax status`',
    standard: `\`node -e 0\` ${nodeMs.toFixed(0)} ms`,
    nuwax: `${statusMs.toFixed(0)} ms (median of ${runs})`,
    goal: '< 500 ms',
    met: statusMs < 500,
    runs: status.map((ms, index) => `${ms.toFixed(0)} ms (node ${node[index]!.toFixed(0)} ms)`),
  });
} finally {
  rmSync(home, { recursive: true, force: true });
}
