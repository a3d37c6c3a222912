/**
 * `npm run bench:prestage`: pre-staging a 1 GiB release. A full package made by `nuwax release
 * pack` (image archives of incompressible data plus many small files), its manifest made and
 * signed by `nuwax release`, served by nginx on 127.0.0.1. The real CLI, `nuwax upgrade
 * --download-only --json` (download, verify, extract; Docker made unreachable so no image is
 * loaded), against `curl -o` + `openssl dgst -sha256` + `tar -xzf` of the same package, in the
 * same run. Peak RSS from /usr/bin/time; nuwax's VmRSS is also sampled from /proc every 20 ms and
 * split by the step its --json events say is running. SIZE_MIB (default 1024) sizes the
 * release; RUNS (default 3).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { median, reportRow } from './report.js';
import { freePort, startNginx } from '../lib/local-server.js';

const MiB = 1024 * 1024;
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';

function must(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

/** A release tree: a compose file, image archives (incompressible) and small files (3/4 text). */
function buildRelease(root: string, totalMiB: number): void {
  writeFileSync(path.join(root, 'docker-compose.yml'), 'services: {}\n');
  const smallMiB = Math.max(1, Math.round(totalMiB * 0.15));
  const web = path.join(root, 'web');
  let written = 0;
  for (let index = 0; written < smallMiB * MiB; index += 1) {
    const folder = path.join(web, `d${index % 40}`);
    if (index < 40) mkdirSync(folder, { recursive: true });
    const size = 1024 + ((index * 7919) % (63 * 1024));
    const data =
      index % 4 === 0
        ? randomFillSync(Buffer.allocUnsafe(size))
        : Buffer.from(`asset ${index} `.repeat(Math.ceil(size / 10))).subarray(0, size);
    writeFileSync(path.join(folder, `asset${index}.${index % 4 ? 'js' : 'png'}`), data);
    written += size;
  }
  const images = path.join(root, 'images');
  mkdirSync(images);
  const imageMiB = totalMiB - smallMiB;
  const block = Buffer.allocUnsafe(MiB);
  for (let image = 0; image < 4; image += 1) {
    const fd = openSync(path.join(images, `service${image}-${arch}.tar`), 'w');
    for (let mib = 0; mib < Math.floor(imageMiB / 4); mib += 1) writeSync(fd, randomFillSync(block));
    closeSync(fd);
  }
}

interface Measured {
  seconds: number;
  rssMiB: number;
}

/** `/usr/bin/time -f %M`: the command's peak RSS. */
function timed(command: string, args: string[]): Measured {
  const started = performance.now();
  const result = spawnSync('/usr/bin/time', ['-f', '%M', command, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
  const rssKiB = Number(result.stderr.trim().split('\n').at(-1));
  return { seconds: (performance.now() - started) / 1000, rssMiB: rssKiB / 1024 };
}

interface NuwaxRun extends Measured {
  /** Peak VmRSS (MiB) sampled while each step ran. */
  steps: Record<string, number>;
}

function vmRss(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch (error) {
    // The process exited between two samples.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ESRCH')
      return 0;
    throw error;
  }
}

async function nuwaxPrestage(home: string): Promise<NuwaxRun> {
  const started = performance.now();
  const child = spawn(
    '/usr/bin/time',
    ['-f', '%M', process.execPath, cli, '--home', home, 'upgrade', '--download-only', '--json'],
    // Docker unreachable: download-only then skips `docker load` (the standard tools load nothing).
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DOCKER_HOST: 'unix:///nonexistent/docker.sock' } },
  );
  let step = 'start';
  const steps: Record<string, number> = {};
  let last = '';
  createInterface({ input: child.stdout! }).on('line', (line) => {
    last = line;
    const event = JSON.parse(line) as { type?: string; step?: string; status?: string };
    if (event.type === 'step' && event.status === 'running' && event.step) step = event.step;
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  // The node process is /usr/bin/time's child.
  let nodePid: number | null = null;
  const timer = setInterval(() => {
    if (nodePid === null) {
      const children = spawnSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).stdout.trim();
      nodePid = children ? Number(children.split('\n')[0]) : null;
    }
    if (nodePid !== null) steps[step] = Math.max(steps[step] ?? 0, vmRss(nodePid));
  }, 20);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearInterval(timer);
  const seconds = (performance.now() - started) / 1000;
  const result = JSON.parse(last) as { status?: string };
  if (code !== 0 || result.status !== 'staged') throw new Error(`nuwax upgrade --download-only: ${last}\n${stderr}`);
  const rssMiB = Number(stderr.trim().split('\n').at(-1)) / 1024;
  return { seconds, rssMiB, steps };
}

function fresh(directory: string): string {
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  return directory;
}

async function main(): Promise<void> {
  if (
    !existsSync('/usr/sbin/nginx') ||
    spawnSync('curl', ['--version']).status !== 0 ||
    spawnSync('openssl', ['version']).status !== 0
  ) {
    console.log('bench:prestage needs /usr/sbin/nginx, curl and openssl; skipped');
    return;
  }
  const totalMiB = Number(process.env.SIZE_MIB ?? 1024);
  const runs = Number(process.env.RUNS ?? 3);
  const root = path.join(os.tmpdir(), `nuwax-bench-prestage-${process.pid}`);
  const site = path.join(root, 'site');
  let nginx: ChildProcess | undefined;
  try {
    const release = fresh(path.join(root, 'release'));
    mkdirSync(site, { recursive: true });
    buildRelease(release, totalMiB);
    const node = (args: string[]) => must(process.execPath, [cli, ...args]);
    node(['release', 'keygen', '-o', path.join(root, 'signing')]);
    const pkg = path.join(site, 'app-1.0.0.tar.gz');
    node(['release', 'pack', release, '--version', '1.0.0', '--arch', arch, '-o', pkg]);
    rmSync(release, { recursive: true, force: true });
    node(['release', 'manifest', '--version', '1.0.0', '-o', path.join(site, 'manifest.json'), pkg]);
    node(['release', 'sign', path.join(site, 'manifest.json'), '-k', path.join(root, 'signing.key')]);
    const publicKey = readFileSync(path.join(root, 'signing.pub'), 'utf8').trim();
    const port = await freePort();
    nginx = await startNginx(root, site, port);
    const url = `http://127.0.0.1:${port}`;
    const size = Number(must('stat', ['-c', '%s', pkg]));
    console.log(
      `release: ${totalMiB} MiB tree, package ${(size / MiB).toFixed(0)} MiB; ${runs} runs, ${os.cpus().length} cores`,
    );
    const ours: NuwaxRun[] = [];
    const tools: Measured[] = [];
    for (let index = 0; index < runs; index += 1) {
      const home = fresh(path.join(root, 'box'));
      writeFileSync(
        path.join(home, 'config.toml'),
        `[server]\nmanifest_url = "${url}/manifest.json"\n\n[security]\npublic_keys = ["${publicKey}"]\n`,
      );
      spawnSync('sync');
      ours.push(await nuwaxPrestage(home));
      rmSync(home, { recursive: true, force: true });
      const client = fresh(path.join(root, 'client'));
      const file = path.join(client, 'app.tar.gz');
      spawnSync('sync');
      const fetched = timed('curl', ['-s', '-o', file, `${url}/app-1.0.0.tar.gz`]);
      const hashed = timed('openssl', ['dgst', '-sha256', file]);
      mkdirSync(path.join(client, 'staging'));
      const extracted = timed('tar', ['-xzf', file, '-C', path.join(client, 'staging')]);
      tools.push({
        seconds: fetched.seconds + hashed.seconds + extracted.seconds,
        rssMiB: Math.max(fetched.rssMiB, hashed.rssMiB, extracted.rssMiB),
      });
      rmSync(client, { recursive: true, force: true });
      const run = ours.at(-1)!;
      const phases = Object.entries(run.steps)
        .map(([name, mib]) => `${name} ${mib.toFixed(0)}`)
        .join(', ');
      console.log(
        `run ${index + 1}: nuwax ${run.seconds.toFixed(2)} s, peak RSS ${run.rssMiB.toFixed(1)} MiB ` +
          `(per step, MiB: ${phases}); curl + openssl + tar ${tools.at(-1)!.seconds.toFixed(2)} s`,
      );
    }
    const nuwaxSeconds = median(ours.map((run) => run.seconds));
    const toolSeconds = median(tools.map((run) => run.seconds));
    const ratio = toolSeconds / nuwaxSeconds;
    const peak = Math.max(...ours.map((run) => run.rssMiB));
    reportRow({
      what: 'pre-stage 1 GiB release (`upgrade --download-only`: download, verify, extract)',
      standard: `\`curl -o\` + \`openssl dgst\` + \`tar -xzf\`: ${toolSeconds.toFixed(2)} s`,
      nuwax: `${nuwaxSeconds.toFixed(2)} s, ${ratio.toFixed(2)}x, peak RSS ${peak.toFixed(0)} MiB`,
      goal: '>= 1.0x, <= 80 MiB',
      met: ratio >= 1 && peak <= 80,
      runs: ours.map((run, index) => {
        const extract = run.steps.staging ?? 0;
        const download = run.steps.downloading ?? 0;
        return (
          `${run.seconds.toFixed(2)} s vs ${tools[index]!.seconds.toFixed(2)} s ` +
          `(${(tools[index]!.seconds / run.seconds).toFixed(2)}x), ${run.rssMiB.toFixed(0)} MiB ` +
          `(download ${download.toFixed(0)}, extract ${extract.toFixed(0)})`
        );
      }),
    });
    console.log('(ratios above 1 mean nuwax is faster)');
  } finally {
    nginx?.kill('SIGTERM');
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
