/**
 * `npm run bench:download`: the verified download. nginx on 127.0.0.1 serves SIZE_MIB (default
 * 1024) MiB of random data from a temp folder; nuwax's verified download (in a child process that
 * reports its own peak RSS) runs against `curl -o FILE && openssl dgst -sha256 FILE`, interleaved,
 * RUNS runs (default 3). Then a resume from 50 % against `curl -C -` plus openssl over the whole
 * file, beside the lower bound of a resume from a saved hash-wasm state; and the bytes over the
 * wire when a download is killed (-9) half way and finished by a new process (nginx's access log).
 * EXTRA=1 also measures the other hashing engine of each case. Both rows go out through reportRow.
 * Everything lives under /tmp and is deleted at the end. Run as a child with `--child ...` it is
 * the measured download itself; with `--checkpoint ...` the checkpoint's lower bound.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { median, reportRow } from './report.js';
import { freePort, startNginx } from '../lib/local-server.js';

const MiB = 1024 * 1024;
const runs = Number(process.env.RUNS ?? 3);
const sizeMiB = Number(process.env.SIZE_MIB ?? 1024);
const extra = process.env.EXTRA === '1';
const self = fileURLToPath(import.meta.url);

if (process.argv[2] === '--child') await child(process.argv.slice(3));
else if (process.argv[2] === '--checkpoint') await checkpointChild(process.argv.slice(3));
else await main();

/** The measured side: one download() in a fresh process, as `nuwax upgrade --download-only` would do it. */
async function child([url, sha256, size, directory, engine]: string[]): Promise<void> {
  const { downloadFile } = await import('../../src/downloader/download.js');
  const v8 = await import('node:v8');
  // As the CLI entry does (src/cli/main.ts).
  v8.setFlagsFromString('--liftoff-only');
  v8.setFlagsFromString('--expose-gc');
  const { openStore } = await import('../../src/state/index.js');
  const store = openStore(path.join(directory!, 'nuwax.db'));
  const started = performance.now();
  const result = await downloadFile(
    { urls: [url!], sha256: sha256!, size: Number(size), directory: directory!, store },
    engine === 'inline' || engine === 'follow' ? engine : undefined,
  );
  const seconds = (performance.now() - started) / 1000;
  store.close();
  console.log(
    JSON.stringify({
      seconds,
      maxRssMiB: peakRssMiB(),
      cpuSeconds: cpuSeconds(),
      fetched: result.fetchedBytes,
      resumedFrom: result.resumedFrom,
    }),
  );
}

/**
 * The peak RSS of this process from the kernel's high-water mark (VmHWM). Not getrusage's maxRSS:
 * Linux carries the parent's RSS at the spawn over into the child's maxRSS, so a child of this
 * bench (~80 MiB) reported the bench's own footprint whenever its own peak was lower.
 */
function peakRssMiB(): number {
  const kib = /^VmHWM:\s*(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return Number(kib) / 1024;
}

interface Measured {
  seconds: number;
  rssMiB: number;
  /** User + system CPU time: what a busy machine moves far less than the wall clock. */
  cpuSeconds: number;
}

function cpuSeconds(): number {
  const usage = process.resourceUsage();
  return (usage.userCPUTime + usage.systemCPUTime) / 1e6;
}

/** The sum of two steps run one after the other (curl, then openssl). */
function both(first: Measured, second: Measured): Measured {
  return {
    seconds: first.seconds + second.seconds,
    rssMiB: Math.max(first.rssMiB, second.rssMiB),
    cpuSeconds: first.cpuSeconds + second.cpuSeconds,
  };
}

function timed(command: string, args: string[]): Measured {
  const started = performance.now();
  const result = spawnSync('/usr/bin/time', ['-f', '%M %U %S', command, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
  const [rssKiB, user, system] = result.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { seconds: (performance.now() - started) / 1000, rssMiB: rssKiB! / 1024, cpuSeconds: user! + system! };
}

function nuwaxChild(
  file: Served,
  directory: string,
  engine: string,
): Measured & { fetched: number; resumedFrom: number; inProcess: number } {
  const started = performance.now();
  const result = spawnSync(
    process.execPath,
    [self, '--child', file.url, file.sha256, String(file.size), directory, engine],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`nuwax download failed: ${result.stderr}`);
  const report = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as {
    seconds: number;
    maxRssMiB: number;
    cpuSeconds: number;
    fetched: number;
    resumedFrom: number;
  };
  return {
    seconds: (performance.now() - started) / 1000,
    rssMiB: report.maxRssMiB,
    cpuSeconds: report.cpuSeconds,
    fetched: report.fetched,
    resumedFrom: report.resumedFrom,
    inProcess: report.seconds,
  };
}

interface Served {
  name: string;
  url: string;
  path: string;
  size: number;
  sha256: string;
}

async function makeRandomFile(file: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  const block = Buffer.allocUnsafe(4 * MiB);
  for (let written = 0; written < size; written += block.length) {
    const piece = block.subarray(0, Math.min(block.length, size - written));
    randomFillSync(piece);
    hash.update(piece);
    if (!out.write(piece)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return hash.digest('hex');
}

/** Body bytes nginx sent, from its access log, for the requests logged after `skipLines`. */
function bytesServed(root: string, skipLines: number): number {
  const lines = readFileSync(path.join(root, 'logs', 'access.log'), 'utf8')
    .trim()
    .split('\n')
    .slice(skipLines);
  return lines.reduce((total, line) => total + Number(line.split(' ')[2] ?? 0), 0);
}

function logLines(root: string): number {
  const log = path.join(root, 'logs', 'access.log');
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).length : 0;
}

function fresh(directory: string): string {
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  return directory;
}

/**
 * The lower bound of a resume from a checkpoint: hash-wasm's state saved at the offset is loaded,
 * and the rest of the file is hashed by hash-wasm, read from the page cache instead of the socket
 * (no fetch, no write, no fsync, no store). A real resume from a checkpoint takes at least this long.
 */
async function checkpointChild([file, stateFile, offset, sha256]: string[]): Promise<void> {
  const { createSHA256 } = await import('hash-wasm');
  const { openSync, readSync, closeSync } = await import('node:fs');
  const hasher = await createSHA256();
  hasher.load(readFileSync(stateFile!));
  const buffer = Buffer.allocUnsafe(MiB);
  const fd = openSync(file!, 'r');
  for (let at = Number(offset); ; ) {
    const read = readSync(fd, buffer, 0, buffer.length, at);
    if (read === 0) break;
    hasher.update(buffer.subarray(0, read));
    at += read;
  }
  closeSync(fd);
  if (hasher.digest('hex') !== sha256) throw new Error("the checkpoint did not give the file's hash");
  console.log(JSON.stringify({ maxRssMiB: peakRssMiB(), cpuSeconds: cpuSeconds() }));
}

async function measureHashEngines(): Promise<void> {
  const data = randomFillSync(Buffer.allocUnsafe(64 * MiB));
  const passes = 4;
  let started = performance.now();
  const node = createHash('sha256');
  for (let pass = 0; pass < passes; pass += 1) node.update(data);
  node.digest();
  const nodeRate = (passes * 64) / ((performance.now() - started) / 1000);
  const { createSHA256 } = await import('hash-wasm');
  const wasm = await createSHA256();
  started = performance.now();
  for (let pass = 0; pass < passes; pass += 1) wasm.update(data);
  wasm.digest();
  const wasmRate = (passes * 64) / ((performance.now() - started) / 1000);
  console.log(
    `SHA-256 engines: node:crypto ${nodeRate.toFixed(0)} MiB/s` +
      `, hash-wasm ${wasmRate.toFixed(0)} MiB/s` +
      ` (node:crypto ${(nodeRate / wasmRate).toFixed(1)}x)`,
  );
}

function secs(value: number): string {
  return `${value.toFixed(2)} s`;
}

function mib(value: number): string {
  return `${value.toFixed(1)} MiB`;
}

function sizeLabel(file: Served): string {
  return file.size === 1024 * MiB ? '1 GiB' : `${(file.size / MiB).toFixed(0)} MiB`;
}

/** Prints the medians of each variant against the reference, and returns the default's per-run lines. */
function summarise(
  reference: Measured[],
  durable: number[],
  variants: Record<string, Measured[]>,
): { ratio: number; seconds: number; rss: number; maxRss: number } {
  const referenceSeconds = median(reference.map((run) => run.seconds));
  const durableSeconds = median(durable);
  console.log(`  with sync (nuwax fsyncs): ${secs(durableSeconds)}`);
  for (const [name, measured] of Object.entries(variants)) {
    const seconds = median(measured.map((run) => run.seconds));
    console.log(
      `  ${name.padEnd(58)} ${secs(seconds)}   peak RSS ${mib(median(measured.map((run) => run.rssMiB)))}` +
        `   CPU ${secs(median(measured.map((run) => run.cpuSeconds)))}` +
        `   ${(referenceSeconds / seconds).toFixed(2)}x, ${(durableSeconds / seconds).toFixed(2)}x with sync` +
        `; per run ${measured.map((run, index) => (reference[index]!.seconds / run.seconds).toFixed(2)).join(' ')}x`,
    );
  }
  const ours = Object.values(variants)[0]!;
  const seconds = median(ours.map((run) => run.seconds));
  return {
    ratio: referenceSeconds / seconds,
    seconds,
    rss: median(ours.map((run) => run.rssMiB)),
    maxRss: Math.max(...ours.map((run) => run.rssMiB)),
  };
}

function perRun(reference: Measured[], ours: Measured[], tool: string): string[] {
  return ours.map(
    (run, index) =>
      `${tool} ${secs(reference[index]!.seconds)}, nuwax ${secs(run.seconds)}` +
      ` (${(reference[index]!.seconds / run.seconds).toFixed(2)}x), peak RSS ${mib(run.rssMiB)}` +
      `; CPU ${secs(reference[index]!.cpuSeconds)} vs ${secs(run.cpuSeconds)}`,
  );
}

/** Fresh download: nuwax's default engine (and with EXTRA=1 the other one) against curl + openssl, interleaved. */
function compareFull(root: string, file: Served): void {
  const engines = extra ? ['default', 'inline', 'follow'] : ['default'];
  const ours: Record<string, Measured[]> = Object.fromEntries(engines.map((engine) => [engine, []]));
  const curl: Measured[] = [];
  const durable: number[] = [];
  const download = path.join(root, 'client');
  for (let run = 0; run < runs; run += 1) {
    fresh(download);
    const target = path.join(download, 'curl.bin');
    const fetched = timed('curl', ['-s', '-o', target, file.url]);
    const hashed = timed('openssl', ['dgst', '-sha256', target]);
    curl.push(both(fetched, hashed));
    // nuwax fsyncs before the rename (SPEC 7); `sync FILE` gives curl the same durability.
    durable.push(fetched.seconds + hashed.seconds + timed('sync', [target]).seconds);
    for (const engine of engines) ours[engine]!.push(nuwaxChild(file, fresh(download), engine));
  }
  rmSync(download, { recursive: true, force: true });
  console.log(`\n${file.name}, ${runs} runs, medians:`);
  console.log(
    `  curl -o && openssl dgst: ${secs(median(curl.map((run) => run.seconds)))}` +
      `, peak RSS ${mib(median(curl.map((run) => run.rssMiB)))}, CPU ${secs(median(curl.map((run) => run.cpuSeconds)))}`,
  );
  const labels: Record<string, string> = {
    default: 'nuwax, default engine (fsync)',
    inline: 'nuwax, inline engine (fsync)',
    follow: 'nuwax, follow engine (fsync)',
  };
  const result = summarise(
    curl,
    durable,
    Object.fromEntries(Object.entries(ours).map(([engine, measured]) => [labels[engine]!, measured])),
  );
  reportRow({
    what: `verified download alone, ${sizeLabel(file)}`,
    standard: `curl -o + openssl dgst -sha256: ${secs(median(curl.map((run) => run.seconds)))}`,
    nuwax: `${secs(result.seconds)} (${result.ratio.toFixed(2)}x), peak RSS ${mib(result.rss)} (max ${mib(result.maxRss)})`,
    goal: '>= 1.0x, <= 80 MiB',
    met: result.ratio >= 1 && result.maxRss <= 80,
    runs: perRun(curl, ours.default!, 'curl+openssl'),
  });
}

async function writePrefix(source: string, target: string, length: number): Promise<void> {
  await pipeline(createReadStream(source, { start: 0, end: length - 1 }), createWriteStream(target));
}

async function prepareHalf(file: Served, directory: string): Promise<number> {
  const half = Math.floor(file.size / 2);
  fresh(directory);
  await writePrefix(file.path, path.join(directory, `${file.sha256}.part`), half);
  // The prefix is on disk already, as after a kill or a reboot: its fsync is not charged to the resume.
  spawnSync('sync');
  const { openStore } = await import('../../src/state/index.js');
  const head = spawnSync('curl', ['-sI', file.url], { encoding: 'utf8' }).stdout;
  const etag = /^etag:\s*(.+?)\s*$/im.exec(head)?.[1] ?? null;
  const store = openStore(path.join(directory, 'nuwax.db'));
  store.downloads.save({
    url: file.url,
    path: path.join(directory, `${file.sha256}.pkg`),
    size: file.size,
    hash: file.sha256,
    offset: half,
    etag,
    lastModified: null,
    hashState: null,
    status: 'partial',
    error: null,
  });
  store.close();
  return half;
}

/** hash-wasm's state after the first `length` bytes, as a checkpoint at that offset would hold it. */
async function saveWasmState(file: Served, length: number, target: string): Promise<void> {
  const { createSHA256 } = await import('hash-wasm');
  const hasher = await createSHA256();
  await pipeline(createReadStream(file.path, { start: 0, end: length - 1 }), async (chunks: AsyncIterable<Buffer>) => {
    for await (const chunk of chunks) hasher.update(chunk);
  });
  writeFileSync(target, hasher.save());
}

/**
 * A resume from 50 % with nuwax's default engine ('follow': a thread hashes the file from byte 0
 * while the rest is fetched) against `curl -C -` and openssl over the whole file, interleaved;
 * beside them the lower bound of a resume from a saved hash-wasm state, and with EXTRA=1 the
 * 'inline' engine (the prefix re-hashed first, then the rest fetched and hashed on the main thread).
 */
async function compareResume(root: string, file: Served): Promise<void> {
  const engines = extra ? ['default', 'inline'] : ['default'];
  const ours: Record<string, Measured[]> = Object.fromEntries(engines.map((engine) => [engine, []]));
  const checkpoint: Measured[] = [];
  const curl: Measured[] = [];
  const durable: number[] = [];
  const directory = path.join(root, 'client');
  const half = Math.floor(file.size / 2);
  const state = path.join(root, 'hash-wasm.state');
  await saveWasmState(file, half, state);
  for (let run = 0; run < runs; run += 1) {
    fresh(directory);
    const target = path.join(directory, 'curl.bin');
    await writePrefix(file.path, target, half);
    spawnSync('sync');
    const fetched = timed('curl', ['-s', '-C', '-', '-o', target, file.url]);
    const hashed = timed('openssl', ['dgst', '-sha256', target]);
    curl.push(both(fetched, hashed));
    durable.push(fetched.seconds + hashed.seconds + timed('sync', [target]).seconds);
    for (const engine of engines) {
      await prepareHalf(file, directory);
      const result = nuwaxChild(file, directory, engine);
      if (result.resumedFrom !== half) throw new Error(`did not resume: ${JSON.stringify(result)}`);
      ours[engine]!.push(result);
    }
    const started = performance.now();
    const bound = spawnSync(process.execPath, [self, '--checkpoint', file.path, state, String(half), file.sha256], {
      encoding: 'utf8',
    });
    if (bound.status !== 0) throw new Error(`the checkpoint's lower bound failed: ${bound.stderr}`);
    const report = JSON.parse(bound.stdout.trim().split('\n').at(-1)!) as { maxRssMiB: number; cpuSeconds: number };
    checkpoint.push({
      seconds: (performance.now() - started) / 1000,
      rssMiB: report.maxRssMiB,
      cpuSeconds: report.cpuSeconds,
    });
  }
  rmSync(directory, { recursive: true, force: true });
  console.log(`\nresume of ${file.name} from 50 %, ${runs} runs, medians:`);
  console.log(
    `  curl -C - && openssl dgst (whole file): ${secs(median(curl.map((run) => run.seconds)))}` +
      `, CPU ${secs(median(curl.map((run) => run.cpuSeconds)))}`,
  );
  const labels: Record<string, string> = {
    default: 'nuwax, default engine (follow; fsync)',
    inline: 'nuwax, inline engine (prefix re-hashed first; fsync)',
  };
  const variants = Object.fromEntries(Object.entries(ours).map(([engine, measured]) => [labels[engine]!, measured]));
  variants['hash-wasm checkpoint, lower bound (load + hash the rest only)'] = checkpoint;
  const result = summarise(curl, durable, variants);
  reportRow({
    what: `resume from 50 %, ${sizeLabel(file)}`,
    standard: `curl -C - + openssl dgst over the file: ${secs(median(curl.map((run) => run.seconds)))}`,
    nuwax: `${secs(result.seconds)} (${result.ratio.toFixed(2)}x), peak RSS ${mib(result.rss)}`,
    goal: '>= 1.0x',
    met: result.ratio >= 1,
    runs: perRun(curl, ours.default!, 'curl -C - + openssl'),
  });
}

/** kill -9 at about half, then a new process: the bytes nginx sent over both requests. */
async function interruptAndResume(root: string, file: Served): Promise<void> {
  const directory = fresh(path.join(root, 'client'));
  const partPath = path.join(directory, `${file.sha256}.part`);
  const before = logLines(root);
  const running = spawn(
    process.execPath,
    [self, '--child', file.url, file.sha256, String(file.size), directory, 'default'],
    { stdio: 'ignore' },
  );
  const exited = new Promise((resolve) => running.once('exit', resolve));
  while (!existsSync(partPath) || statSync(partPath).size < file.size / 2)
    await new Promise((resolve) => setTimeout(resolve, 5));
  running.kill('SIGKILL');
  await exited;
  const onDisk = statSync(partPath).size;
  await new Promise((resolve) => setTimeout(resolve, 200)); // nginx logs the cut request when it notices
  const result = nuwaxChild(file, directory, 'default');
  const wire = bytesServed(root, before);
  rmSync(directory, { recursive: true, force: true });
  console.log(`\nkill -9 at ${((onDisk / file.size) * 100).toFixed(0)} % of ${file.name}, then a new process:`);
  console.log(
    `  on disk after the kill ${onDisk} B` +
      `; the new process resumed from ${result.resumedFrom} B and fetched ${result.fetched} B` +
      ` (= size - on disk: ${result.fetched === file.size - onDisk})`,
  );
  console.log(
    `  nginx sent ${wire} B in all = file size + ${wire - file.size} B` +
      ` (${((wire - file.size) / MiB).toFixed(1)} MiB: what the killed process had received but not yet written` +
      ': its batch of at most 1 MiB and the socket buffers)',
  );
}

async function main(): Promise<void> {
  if (
    !existsSync('/usr/sbin/nginx') ||
    spawnSync('curl', ['--version']).status !== 0 ||
    spawnSync('openssl', ['version']).status !== 0
  ) {
    console.log('bench:download needs /usr/sbin/nginx, curl and openssl; skipped');
    return;
  }
  const root = path.join(os.tmpdir(), `nuwax-bench-download-${process.pid}`);
  mkdirSync(path.join(root, 'www'), { recursive: true });
  let nginx: ChildProcess | undefined;
  try {
    await measureHashEngines();
    const port = await freePort();
    nginx = await startNginx(root, path.join(root, 'www'), port, { accessLog: true });
    const name = `${sizeMiB}MiB.bin`;
    const served = path.join(root, 'www', name);
    const file: Served = {
      name,
      size: sizeMiB * MiB,
      path: served,
      url: `http://127.0.0.1:${port}/${name}`,
      sha256: await makeRandomFile(served, sizeMiB * MiB),
    };
    console.log(
      `machine: ${os.cpus().length} cores, load average ${os
        .loadavg()
        .map((value) => value.toFixed(2))
        .join(' ')}`,
    );
    compareFull(root, file);
    await compareResume(root, file);
    await interruptAndResume(root, file);
  } finally {
    nginx?.kill('SIGTERM');
    rmSync(root, { recursive: true, force: true });
  }
}
