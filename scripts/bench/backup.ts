/**
 * Backups (SPEC 8): nuwax's backup create and restore against GNU tar at the same gzip
 * level, measured in the same run. The tree: FILES files of 1-64 KiB (half text, half random) and
 * BIG files of BIG_MIB MiB (defaults 20,000 and 3 × 100 MiB; `--small` for 2,000 and 3 × 10 MiB).
 * nuwax runs in a child process so that its peak RSS (VmHWM) is its own.
 * Reference points: `tar -czf`, `tar -I pigz` (when pigz is installed), `tar -xzf`. Neither tar nor
 * nuwax fsyncs extracted files; nuwax's restore includes its own sha256 check of the archive.
 * Then the memory of a backup of MANY_FILES small files (default 1,000,000; `--small` 100,000),
 * peak RSS at each count of MANY_STEPS (default 50,000, 300,000 and all), MANY_RUNS times
 * (default 1: peak RSS does not depend on the machine's load). MANY_FILES=0 leaves it out.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { encodeHeader, paddingFor } from '../../src/archive/tar-header.js';
import { median, reportRow } from './report.js';
import { buildTree, textOf } from './tree.js';

const SCRIPT = fileURLToPath(import.meta.url);
const LEVEL = 6;

interface ChildReport {
  ms: number;
  maxRssMiB: number;
  id?: number;
  file?: string;
  size?: number;
}

/**
 * The child's own peak: VmHWM. getrusage's maxRSS is not: Linux carries it over from the process
 * that forked the child (the bench's parent, which wrote the trees), so it read the parent's peak.
 */
function peakRssMiB(): number {
  const status = existsSync('/proc/self/status') ? readFileSync('/proc/self/status', 'utf8') : '';
  const peak = /^VmHWM:\s+(\d+) kB/m.exec(status);
  return peak ? Number(peak[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

/** Child mode: one nuwax operation, reported as JSON on stdout. */
async function child(mode: string, home: string, id: string | undefined, paths?: string): Promise<void> {
  // The process-wide V8 flags of the CLI entry (src/cli/main.ts), as `nuwax backup` runs with them.
  v8.setFlagsFromString('--liftoff-only');
  v8.setFlagsFromString('--expose-gc');
  // Loaded after the flags, as the CLI loads a command's modules.
  const { BackupService } = await import('../../src/backup/index.js');
  const { openStore } = await import('../../src/state/index.js');
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
      paths: paths ? paths.split(',') : readdirSync(path.join(home, 'docker')).sort(),
      kind: 'manual',
      version: null,
      runHook: false,
    });
    Object.assign(report, { id: row.id, file: row.path, size: row.size });
  } else {
    await service.restore(Number(id), { runHook: false });
  }
  report.ms = Number(process.hrtime.bigint() - started) / 1e6;
  report.maxRssMiB = peakRssMiB();
  store.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): { ms: number; stdout: string } {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, stdout: result.stdout };
}

function nuwax(mode: string, home: string, id?: number, paths?: string[]): ChildReport {
  const args = [SCRIPT, '--child', mode, home, String(id ?? '')];
  if (paths) args.push(paths.join(','));
  const { stdout } = run(process.execPath, args);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildReport;
}

const FOLDER_FILES = 50_000;

/** `count` files of 64-1023 bytes of text in folders of 50,000 (q0, q1, ...), 1,000 per subfolder, by `tar -x`. */
async function buildManyFiles(root: string, count: number): Promise<void> {
  mkdirSync(root, { recursive: true });
  const text = textOf(1 << 16);
  const tar = spawn('tar', ['-x', '-C', root], { stdio: ['pipe', 'inherit', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => tar.on('close', resolve));
  const mtime = new Date();
  let chunks: Buffer[] = [];
  let buffered = 0;
  const flush = async () => {
    if (!tar.stdin.write(Buffer.concat(chunks))) await new Promise((resolve) => tar.stdin.once('drain', resolve));
    chunks = [];
    buffered = 0;
  };
  const directory = (name: string) => encodeHeader({ name, type: 'directory', size: 0, mode: 0o755, mtime });
  for (let index = 0; index < count; index += 1) {
    const folder = `q${Math.floor(index / FOLDER_FILES)}`;
    const sub = `${folder}/d${Math.floor((index % FOLDER_FILES) / 1000)}`;
    if (index % FOLDER_FILES === 0) chunks.push(directory(folder));
    if (index % 1000 === 0) chunks.push(directory(sub));
    const size = 64 + ((index * 7919) % 960);
    const start = (index * 131) % (text.length - size);
    chunks.push(encodeHeader({ name: `${sub}/f${index}.txt`, type: 'file', size, mode: 0o644, mtime }));
    chunks.push(text.subarray(start, start + size), Buffer.alloc(paddingFor(size)));
    buffered += 1024 + size;
    if (buffered >= 1 << 20) await flush();
  }
  chunks.push(Buffer.alloc(1024));
  await flush();
  tar.stdin.end();
  if ((await exited) !== 0) throw new Error('tar -x of the generated files failed');
}

/** Peak RSS of backups of 50,000, 300,000 ... MANY_FILES small files: it must not grow with the count. */
async function manyFiles(work: string, small: boolean): Promise<void> {
  const count = Number(process.env.MANY_FILES ?? (small ? 100_000 : 1_000_000));
  if (count <= 0) return;
  const runs = Number(process.env.MANY_RUNS ?? 1);
  const steps = (process.env.MANY_STEPS?.split(',').map(Number) ?? [50_000, 300_000])
    .filter((step) => step > 0 && step < count)
    .concat(count);
  const home = path.join(work, 'many');
  const started = process.hrtime.bigint();
  await buildManyFiles(path.join(home, 'docker'), count);
  const label = (files: number) => files.toLocaleString('en-US');
  console.log(
    `${label(count)} small files written in ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(0)} s`,
  );
  const peaks: number[][] = [];
  for (let run = 0; run < runs; run += 1) {
    const peak: number[] = [];
    for (const step of steps) {
      const folders = Array.from({ length: Math.ceil(step / FOLDER_FILES) }, (_, index) => `q${index}`);
      const created = nuwax('create', home, undefined, folders);
      rmSync(created.file!, { force: true });
      peak.push(created.maxRssMiB);
      console.log(
        `  ${label(step)} files: ${(created.ms / 1000).toFixed(1)} s, peak RSS ${created.maxRssMiB.toFixed(1)} MiB`,
      );
    }
    peaks.push(peak);
  }
  const describe = (peak: number[]) =>
    steps.map((step, index) => `${label(step)} files ${peak[index]!.toFixed(0)} MiB`).join(', ');
  const worst = steps.map((_, index) => Math.max(...peaks.map((peak) => peak[index]!)));
  reportRow({
    what: `backup create of ${label(count)} small files`,
    standard: '(memory only)',
    nuwax: `peak RSS ${describe(worst)}`,
    goal: '<= 80 MiB whatever the number of files',
    met: worst.every((peak) => peak <= 80),
    runs: peaks.map(describe),
  });
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
    tarLive: [],
    nuwaxLive: [],
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
      // Over the live tree: tar extracts beside it and deletes the old one; nuwax restores in place
      // (its deletion of the replaced tree runs after the restore returned, before its process exits).
      const old = path.join(work, 'tar-old');
      const fresh = path.join(work, 'tar-new');
      run('cp', ['-a', tree, old]);
      mkdirSync(fresh, { recursive: true });
      const started = process.hrtime.bigint();
      run('tar', ['-xzf', reference, '-C', fresh]);
      run('rm', ['-rf', old]);
      times.tarLive!.push(Number(process.hrtime.bigint() - started) / 1e6);
      rmSync(fresh, { recursive: true, force: true });
      const live = nuwax('restore', home, lastId);
      times.nuwaxLive!.push(live.ms);
      rss.restore!.push(live.maxRssMiB);
      if (index < runs - 1) rmSync(lastFile, { force: true });
    }
    const listing = spawnSync('tar', ['-tzf', lastFile], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const gunzipChecks = spawnSync('gzip', ['-t', lastFile]).status === 0;
    const extracted = path.join(work, 'gnu-extracted');
    mkdirSync(extracted);
    const gnuExtracts = spawnSync('tar', ['-xzf', lastFile, '-C', extracted]).status === 0;
    const sameTree =
      gnuExtracts && spawnSync('diff', ['-r', '-q', '-x', '.nuwax-backup.json', tree, extracted]).status === 0;
    rmSync(extracted, { recursive: true, force: true });
    const gnuTarReads =
      gunzipChecks && sameTree && listing.status === 0 && listing.stdout.split('\n').filter(Boolean).length >= files;
    const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    console.log(
      `sizes: nuwax ${(statSync(lastFile).size / 2 ** 20).toFixed(1)} MiB` +
        `, tar -czf ${(statSync(reference).size / 2 ** 20).toFixed(1)} MiB` +
        `; gzip -t, GNU tar -tzf and -xzf (diff -r with the tree) read nuwax's archive: ${gnuTarReads ? 'yes' : 'NO'}`,
    );
    const pigzSize = hasPigz ? statSync(path.join(work, 'pigz.tar.gz')).size : 0;
    const mib = (value: number) => `${(value / 2 ** 20).toFixed(0)} MiB`;
    const ratio = hasPigz ? median(times.pigzCreate!) / median(times.nuwaxCreate!) : 0;
    const defaults = files === 20_000 && big === 3 && bigMiB === 100;
    reportRow({
      what: defaults
        ? 'backup create, 970 MiB tree (20,000 files + 3 × 100 MiB)'
        : `backup create, ${mib(bytes)} tree (${files.toLocaleString('en-US')} files + ${big} × ${bigMiB} MiB)`,
      standard: hasPigz
        ? `tar -I pigz -cf ${seconds(median(times.pigzCreate!))}, archive ${mib(pigzSize)}`
        : 'tar -I pigz: pigz is not installed',
      nuwax:
        `${seconds(median(times.nuwaxCreate!))} (${ratio.toFixed(2)}x pigz), ` +
        `peak ${Math.max(...rss.create!).toFixed(0)} MiB, archive ${mib(statSync(lastFile).size)}` +
        (gnuTarReads ? '' : ', NOT read back by GNU tar'),
      goal: '>= 1.0x pigz, <= 80 MiB',
      met: ratio >= 1 && Math.max(...rss.create!) <= 80 && gnuTarReads,
      runs: times.nuwaxCreate!.map(
        (ms, index) =>
          `nuwax ${seconds(ms)}, pigz ${hasPigz ? seconds(times.pigzCreate![index]!) : '-'}, ` +
          `tar -czf ${seconds(times.tarCreate![index]!)}, ${rss.create![index]!.toFixed(0)} MiB`,
      ),
    });
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
      `restore over the live tree: nuwax ${seconds(median(times.nuwaxLive!))}` +
        `, tar -xzf beside + rm -rf old ${seconds(median(times.tarLive!))} ` +
        `→ ${(median(times.tarLive!) / median(times.nuwaxLive!)).toFixed(2)}x (runs: nuwax ` +
        `${times.nuwaxLive!.map((ms) => seconds(ms)).join(', ')}; tar+rm ${times.tarLive!.map((ms) => seconds(ms)).join(', ')})`,
    );
    console.log(
      `peak RSS of nuwax: create ${Math.max(...rss.create!).toFixed(0)} MiB, ` +
        `restore ${Math.max(...rss.restore!).toFixed(0)} MiB`,
    );
    console.log('(ratios above 1 mean nuwax is faster)');
    // An archive GNU tar cannot read is a bug, not a missed goal.
    if (!gnuTarReads) process.exitCode = 1;
    rmSync(tree, { recursive: true, force: true });
    await manyFiles(work, small);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3]!, process.argv[4]!, process.argv[5], process.argv[6]);
else await main();
