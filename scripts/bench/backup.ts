/**
 * Backups (SPEC 8): nuwax's backup create and restore against GNU tar at the same gzip
 * level, measured in the same run. The tree: FILES files of 1-64 KiB (half text, half random) and
 * BIG files of BIG_MIB MiB (defaults 20,000 and 3 × 100 MiB; `--small` for 2,000 and 3 × 10 MiB).
 * nuwax runs in a child process so that its peak RSS (process.resourceUsage().maxRSS) is its own.
 * Reference points: `tar -czf`, `tar -I pigz` (when pigz is installed), `tar -xzf`. Neither tar nor
 * nuwax fsyncs extracted files; nuwax's restore includes its own sha256 check of the archive.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackupService } from '../../src/backup/index.js';
import { openStore } from '../../src/state/index.js';

const SCRIPT = fileURLToPath(import.meta.url);
const LEVEL = 6;

interface ChildReport {
  ms: number;
  maxRssMiB: number;
  id?: number;
  file?: string;
  size?: number;
}

/** Child mode: one nuwax operation, reported as JSON on stdout. */
async function child(mode: string, home: string, id: string | undefined): Promise<void> {
  const store = openStore(path.join(home, 'data', 'nuwax.db'));
  const service = new BackupService({
    home,
    dockerDir: path.join(home, 'docker'),
    backupsDir: path.join(home, 'backups'),
    store,
    compression: LEVEL,
  });
  const started = process.hrtime.bigint();
  const report: ChildReport = { ms: 0, maxRssMiB: 0 };
  if (mode === 'create') {
    const row = await service.create({
      paths: readdirSync(path.join(home, 'docker')).sort(),
      kind: 'manual',
      version: null,
      runHook: false,
    });
    Object.assign(report, { id: row.id, file: row.path, size: row.size });
  } else {
    await service.restore(Number(id), { runHook: false });
  }
  report.ms = Number(process.hrtime.bigint() - started) / 1e6;
  report.maxRssMiB = process.resourceUsage().maxRSS / 1024;
  store.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

const WORDS = (
  'the quick brown fox jumps over a lazy dog while nuwax keeps every edge box up to date ' +
  'and never leaves it broken'
).split(' ');

function textOf(size: number): Buffer {
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const words = Array.from({ length: 12 }, () => WORDS[Math.floor(Math.random() * WORDS.length)]);
    const line = `${words.join(' ')} ${length}\n`;
    parts.push(line);
    length += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

function buildTree(root: string, files: number, big: number, bigMiB: number): number {
  let bytes = 0;
  for (let index = 0; index < files; index += 1) {
    const folder = path.join(root, 'data', `d${index % 50}`, `e${index % 7}`);
    if (index < 350) mkdirSync(folder, { recursive: true });
    const size = 1024 + Math.floor(Math.random() * 63 * 1024);
    writeFileSync(
      path.join(folder, `f${index}.${index % 2 ? 'bin' : 'txt'}`),
      index % 2 ? randomBytes(size) : textOf(size),
    );
    bytes += size;
  }
  mkdirSync(path.join(root, 'images'), { recursive: true });
  for (let index = 0; index < big; index += 1) {
    const file = path.join(root, 'images', `image${index}.tar`);
    for (let mib = 0; mib < bigMiB; mib += 1)
      writeFileSync(file, mib % 2 ? randomBytes(1 << 20) : textOf(1 << 20), { flag: 'a' });
    bytes += bigMiB << 20;
  }
  return bytes;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): { ms: number; stdout: string } {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, stdout: result.stdout };
}

function nuwax(mode: string, home: string, id?: number): ChildReport {
  const args = [SCRIPT, '--child', mode, home];
  if (id !== undefined) args.push(String(id));
  const { stdout } = run(process.execPath, args);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildReport;
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

async function main(): Promise<void> {
  const small = process.argv.includes('--small');
  const files = Number(process.env.FILES ?? (small ? 2000 : 20_000));
  const big = Number(process.env.BIG ?? 3);
  const bigMiB = Number(process.env.BIG_MIB ?? (small ? 10 : 100));
  const runs = Number(process.env.RUNS ?? 3);
  const work = mkdtempSync(path.join(os.tmpdir(), 'nuwax-bench-backup-'));
  const home = path.join(work, 'home');
  const tree = path.join(home, 'docker');
  const hasPigz = spawnSync('pigz', ['--version']).status === 0;
  const times: Record<string, number[]> = {
    tarCreate: [],
    pigzCreate: [],
    nuwaxCreate: [],
    tarRestore: [],
    nuwaxRestore: [],
  };
  const rss: Record<string, number[]> = { create: [], restore: [] };
  try {
    const bytes = buildTree(tree, files, big, bigMiB);
    console.log(
      `tree: ${files} files of 1-64 KiB + ${big} × ${bigMiB} MiB = ${(bytes / 2 ** 20).toFixed(0)} MiB` +
        `, gzip level ${LEVEL}, ${runs} runs, ${os.cpus().length} cores`,
    );
    run('sync', []);
    const reference = path.join(work, 'reference.tar.gz');
    let lastId = 0;
    let lastFile = '';
    for (let index = 0; index < runs; index += 1) {
      times.tarCreate!.push(run('tar', ['-czf', reference, '-C', tree, '.'], { GZIP: `-${LEVEL}` }).ms);
      if (hasPigz)
        times.pigzCreate!.push(
          run('tar', ['-I', `pigz -${LEVEL}`, '-cf', path.join(work, 'pigz.tar.gz'), '-C', tree, '.']).ms,
        );
      const created = nuwax('create', home);
      times.nuwaxCreate!.push(created.ms);
      rss.create!.push(created.maxRssMiB);
      lastId = created.id!;
      lastFile = created.file!;
      // Restores: into an empty folder for tar; for nuwax, docker/ moved away so that it is rebuilt whole.
      const target = path.join(work, 'tar-target');
      mkdirSync(target, { recursive: true });
      times.tarRestore!.push(run('tar', ['-xzf', reference, '-C', target]).ms);
      rmSync(target, { recursive: true, force: true });
      const aside = path.join(work, 'docker-aside');
      run('mv', [tree, aside]);
      const restored = nuwax('restore', home, lastId);
      times.nuwaxRestore!.push(restored.ms);
      rss.restore!.push(restored.maxRssMiB);
      rmSync(tree, { recursive: true, force: true });
      run('mv', [aside, tree]);
      if (index < runs - 1) rmSync(lastFile, { force: true });
    }
    const listing = spawnSync('tar', ['-tzf', lastFile], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const gnuTarReads = listing.status === 0 && listing.stdout.split('\n').filter(Boolean).length >= files;
    const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    console.log(
      `sizes: nuwax ${(statSync(lastFile).size / 2 ** 20).toFixed(1)} MiB` +
        `, tar -czf ${(statSync(reference).size / 2 ** 20).toFixed(1)} MiB` +
        `; GNU tar -tzf reads nuwax's archive: ${gnuTarReads ? 'yes' : 'NO'}`,
    );
    console.log(
      `create:  nuwax ${seconds(median(times.nuwaxCreate!))}` +
        `, tar -czf ${seconds(median(times.tarCreate!))} ` +
        `→ ${(median(times.tarCreate!) / median(times.nuwaxCreate!)).toFixed(2)}x tar -czf`,
    );
    if (hasPigz)
      console.log(
        `         tar -I pigz ${seconds(median(times.pigzCreate!))} ` +
          `→ nuwax ${(median(times.pigzCreate!) / median(times.nuwaxCreate!)).toFixed(2)}x pigz`,
      );
    console.log(
      `restore: nuwax ${seconds(median(times.nuwaxRestore!))}` +
        `, tar -xzf ${seconds(median(times.tarRestore!))} ` +
        `→ ${(median(times.tarRestore!) / median(times.nuwaxRestore!)).toFixed(2)}x tar -xzf`,
    );
    console.log(
      `peak RSS of nuwax: create ${Math.max(...rss.create!).toFixed(0)} MiB, ` +
        `restore ${Math.max(...rss.restore!).toFixed(0)} MiB`,
    );
    console.log('(ratios above 1 mean nuwax is faster)');
    if (!gnuTarReads) process.exitCode = 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3]!, process.argv[4]!, process.argv[5]);
else await main();
