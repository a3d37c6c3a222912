/**
 * `npm run bench`: every benchmark in turn, each printing ratios against a standard tool; at the
 * end, one table of every row beside its goal (the rows each benchmark reported with `reportRow`).
 * `ONLY=download,backup` runs a subset.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ROW_PREFIX, type Row } from './report.js';

const ALL = [
  'status',
  'download',
  'prestage',
  'backup',
  'restore',
  'apply',
  'fleet',
  'image-delta',
  'downtime',
  'daemon-idle',
];
const only = process.env.ONLY?.split(',').filter(Boolean);
const rows: Row[] = [];

async function runOne(script: string): Promise<number | null> {
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    if (line.startsWith(ROW_PREFIX)) rows.push(JSON.parse(line.slice(ROW_PREFIX.length)) as Row);
    else console.log(line);
  });
  return new Promise((resolve) => child.on('close', (code) => resolve(code)));
}

for (const name of only ?? ALL) {
  const script = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  if (!existsSync(script)) continue;
  console.log(`\n== ${name} ==`);
  if ((await runOne(script)) !== 0) process.exitCode = 1;
}

const cell = (text: string) => text.replaceAll('|', '\\|');
console.log('\n== every row beside its goal ==\n');
console.log('| what | standard tool, same run | nuwax | goal | |');
console.log('|---|---|---|---|---|');
for (const row of rows) {
  const verdict = row.met ? 'met' : 'missed';
  console.log(`| ${cell(row.what)} | ${cell(row.standard)} | ${cell(row.nuwax)} | ${cell(row.goal)} | ${verdict} |`);
}
console.log('\nper run:');
for (const row of rows) console.log(`- ${row.what}: ${row.runs.join('; ')}`);
