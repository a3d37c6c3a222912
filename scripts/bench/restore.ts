/**
 * `npm run bench:restore`: a restore of a backup over the live tree (docker/ in place) against
 * `tar -xzf` of the same archive into a new folder plus `rm -rf` of the old tree, timed together.
 * The tree: FILES files of 1-64 KiB (half text, half random) and BIG files of BIG_MIB MiB (defaults
 * 20,000 and 3 × 100 MiB; `--small` or SMALL=1 for 2,000 and 3 × 10 MiB). nuwax restores in a child
 * process with the CLI's V8 flags; it samples its own memory (process.memoryUsage and
 * /proc/self/status every 10 ms) and reports its peaks before and after the restore returned (the
 * replaced tree is synced then deleted after it). RUNS (default 3).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { median, reportRow } from './report.js';
import { buildTree } from './tree.js';

const SCRIPT = fileURLToPath(import.meta.url);
const MiB = 1024 * 1024;

interface Peaks {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

interface ChildReport {
  ms: number;
  /** VmRSS (MiB) with the modules loaded and the store open, before the restore. */
  baseline: number;
  maxRssMiB: number;
  /** Peaks (MiB) sampled while the restore ran, then while the replaced tree was deleted. */
  during: Peaks;
  after: Peaks;
  id?: number;
  file?: string;
}

function vmRssMiB(): number {
  const status = readFileSync('/proc/self/status', 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

function sampler(): { peaks: Peaks; stop(): void } {
  const peaks: Peaks = { rss: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
  const sample = () => {
    const usage = process.memoryUsage();
    peaks.rss = Math.max(peaks.rss, vmRssMiB());
    peaks.heapUsed = Math.max(peaks.heapUsed, usage.heapUsed / MiB);
    peaks.external = Math.max(peaks.external, usage.external / MiB);
    peaks.arrayBuffers = Math.max(peaks.arrayBuffers, usage.arrayBuffers / MiB);
  };
  const timer = setInterval(sample, 10);
  return {
    peaks,
    stop() {
      clearInterval(timer);
      sample();
    },
  };
}

/** Child mode: create the backup (not measured) or restore it over docker/ (measured). */
async function child(mode: string, home: string, id: string | undefined): Promise<void> {
  // As the CLI entry does (src/cli/main.ts): a rollback runs in that process.
  v8.setFlagsFromString('--liftoff-only');
  v8.setFlagsFromString('--expose-gc');
  const { BackupService } = await import('../../src/backup/index.js');
  const { openStore } = await import('../../src/state/index.js');
  const store = openStore(path.join(home, 'data', 'nuwax.db'));
  const service = new BackupService({
    home,
    dockerDir: path.join(home, 'docker'),
    backupsDir: path.join(home, 'backups'),
    store,
    compression: 6,
  });
  if (mode === 'create') {
    const row = await service.create({
      paths: readdirSync(path.join(home, 'docker')).sort(),
      kind: 'manual',
      version: null,
      runHook: false,
    });
    store.close();
    process.stdout.write(`${JSON.stringify({ id: row.id, file: row.path })}\n`);
    return;
  }
  const baseline = vmRssMiB();
  const during = sampler();
  const started = process.hrtime.bigint();
  await service.restore(Number(id), { runHook: false });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  during.stop();
  const after = sampler();
  await service.settled();
  after.stop();
  store.close();
  const report: ChildReport = {
    ms,
    baseline,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    during: during.peaks,
    after: after.peaks,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

function run(command: string, args: string[]): { ms: number; stdout: string } {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, stdout: result.stdout };
}

function nuwax<T>(mode: string, home: string, id?: number): T {
  const args = [SCRIPT, '--child', mode, home];
  if (id !== undefined) args.push(String(id));
  const { stdout } = run(process.execPath, args);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

/** Every file's path, size and content hash, to check that the restore gave back the backup. */
function fingerprint(root: string): string {
  return run('sh', ['-c', `cd '${root}' && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum`]).stdout;
}

async function main(): Promise<void> {
  const small = process.argv.includes('--small') || process.env.SMALL === '1';
  const files = Number(process.env.FILES ?? (small ? 2000 : 20_000));
  const big = Number(process.env.BIG ?? 3);
  const bigMiB = Number(process.env.BIG_MIB ?? (small ? 10 : 100));
  const runs = Number(process.env.RUNS ?? 3);
  const work = mkdtempSync(path.join(os.tmpdir(), 'nuwax-bench-restore-'));
  const home = path.join(work, 'home');
  const tree = path.join(home, 'docker');
  try {
    const bytes = buildTree(tree, files, big, bigMiB);
    const size = `${files} files of 1-64 KiB + ${big} × ${bigMiB} MiB = ${(bytes / MiB).toFixed(0)} MiB`;
    console.log(`tree: ${size}, ${runs} runs, ${os.cpus().length} cores`);
    const { id, file } = nuwax<{ id: number; file: string }>('create', home);
    const expected = fingerprint(tree);
    run('sync', []);
    const tar: number[] = [];
    const ours: ChildReport[] = [];
    for (let index = 0; index < runs; index += 1) {
      // tar: extract beside the live tree, then delete the old one (a copy of it, made untimed).
      const old = path.join(work, 'tar-old');
      const fresh = path.join(work, 'tar-new');
      run('cp', ['-a', tree, old]);
      mkdirSync(fresh, { recursive: true });
      run('sync', []);
      const started = process.hrtime.bigint();
      run('tar', ['-xzf', file, '-C', fresh]);
      run('rm', ['-rf', old]);
      tar.push(Number(process.hrtime.bigint() - started) / 1e6);
      rmSync(fresh, { recursive: true, force: true });
      run('sync', []);
      // nuwax: the restore over docker/ in place; timed until it returns.
      const report = nuwax<ChildReport>('restore', home, id);
      ours.push(report);
      if (fingerprint(tree) !== expected) throw new Error('the restored tree differs from the backed-up one');
      const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
      console.log(
        `run ${index + 1}: nuwax ${seconds(report.ms)} (peak RSS ${report.maxRssMiB.toFixed(1)} MiB, ` +
          `${report.baseline.toFixed(1)} before it; during ` +
          `rss ${report.during.rss.toFixed(1)}, heap ${report.during.heapUsed.toFixed(1)}, ` +
          `external ${report.during.external.toFixed(1)}, arrayBuffers ${report.during.arrayBuffers.toFixed(1)}; ` +
          `deleting the old tree after return: rss ${report.after.rss.toFixed(1)} MiB), ` +
          `tar -xzf + rm -rf ${seconds(tar.at(-1)!)}`,
      );
    }
    const nuwaxMs = median(ours.map((item) => item.ms));
    const tarMs = median(tar);
    const ratio = tarMs / nuwaxMs;
    const peak = Math.max(...ours.map((item) => item.maxRssMiB));
    reportRow({
      what: 'restore of that backup over the live tree',
      standard: `\`tar -xzf\` into a new folder + \`rm -rf\` of the old one: ${(tarMs / 1000).toFixed(2)} s`,
      nuwax: `${(nuwaxMs / 1000).toFixed(2)} s, ${ratio.toFixed(2)}x, peak RSS ${peak.toFixed(0)} MiB`,
      goal: '>= 1.0x, <= 80 MiB',
      met: ratio >= 1 && peak <= 80,
      runs: ours.map(
        (item, index) =>
          `${(item.ms / 1000).toFixed(2)} s vs ${(tar[index]! / 1000).toFixed(2)} s ` +
          `(${(tar[index]! / item.ms).toFixed(2)}x), ${item.maxRssMiB.toFixed(0)} MiB`,
      ),
    });
    console.log(`(${size}; ratios above 1 mean nuwax is faster)`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3]!, process.argv[4]!, process.argv[5]);
else await main();
