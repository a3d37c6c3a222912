/**
 * `npm run bench:daemon-idle`: the resident memory (VmRSS) of a waiting `nuwax daemon` against an
 * idle `node -e` in the same run. The daemon checks a local release server every 5 s (no jitter):
 * each cycle is a real check that ends up to date. With Docker, the box runs the sample busybox app
 * (scripts/lib/sample-app.ts) and the server then offers 1.1.0 and 1.2.0: two real upgrades by the
 * daemon between the idle readings. Read after start-up, after the first cycle, after the two
 * upgrades (at the next up-to-date cycle), and the daemon's peak (VmHWM). Goal: idle <= 60 MiB.
 * RUNS (default 3). Without Docker the upgrades are left out and it says so.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { dockerReachable, importBusyboxImage, removeImages, writeSampleVersion } from '../lib/sample-app.js';
import { median, reportRow } from './report.js';
import { freePort } from '../lib/local-server.js';

const RUNS = Number(process.env.RUNS ?? 3);
const GOAL_MIB = 60;
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';

function status(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? Number.NaN) / 1024;
}

function nuwax(args: string[]): string {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`nuwax ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

interface Run {
  node: number;
  started: number;
  afterCycle: number;
  afterUpgrades: number | null;
  peak: number;
}

/** The releases a run offers: 1.0.0 (installed first), then 1.1.0 and 1.2.0 with Docker. */
class Releases {
  readonly site: string;
  private readonly key: string;
  constructor(
    private readonly work: string,
    private readonly tag: string | null,
    private readonly appPort: number,
  ) {
    this.site = path.join(work, 'site');
    mkdirSync(path.join(this.site, 'stable'), { recursive: true });
    nuwax(['release', 'keygen', '-o', path.join(work, 'signing')]);
    this.key = path.join(work, 'signing.key');
  }

  publicKey(): string {
    return readFileSync(path.join(this.work, 'signing.pub'), 'utf8').trim();
  }

  /** Packs `version` and makes it the one the manifest offers. */
  offer(version: string): void {
    const folder = path.join(this.work, 'versions', version);
    if (this.tag)
      writeSampleVersion(folder, { version, port: this.appPort, imageTag: this.tag, page: `Hello from ${version}` });
    else {
      mkdirSync(folder, { recursive: true });
      writeFileSync(path.join(folder, 'docker-compose.yml'), 'services: {}\n');
    }
    const file = path.join(this.site, 'stable', `app-${version}.tar.gz`);
    nuwax(['release', 'pack', folder, '--version', version, '--arch', arch, '-o', file]);
    const manifest = path.join(this.site, 'stable', 'manifest.json');
    nuwax(['release', 'manifest', '--version', version, '-o', manifest, file]);
    nuwax(['release', 'sign', manifest, '-k', this.key]);
  }
}

async function oneRun(tag: string | null): Promise<Run> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'nuwax-bench-daemon-'));
  const project = `nuwaxidle${process.pid}${Date.now() % 100000}`;
  const children: ChildProcess[] = [];
  try {
    const releases = new Releases(work, tag, await freePort());
    releases.offer('1.0.0');
    const port = await freePort();
    const server = spawn(process.execPath, [cli, 'serve', releases.site, '--port', String(port)], { stdio: 'ignore' });
    children.push(server);
    const manifestUrl = `http://127.0.0.1:${port}/stable/manifest.json`;
    for (
      let tries = 0;
      !(await fetch(manifestUrl).then(
        (r) => r.ok,
        () => false,
      ));
      tries += 1
    ) {
      if (tries > 200) throw new Error('the release server did not start');
      await sleep(50);
    }
    const home = path.join(work, 'box');
    mkdirSync(path.join(home, 'docker'), { recursive: true });
    writeFileSync(
      path.join(home, 'config.toml'),
      `[server]\nmanifest_url = "${manifestUrl}"\n\n[security]\npublic_keys = ["${releases.publicKey()}"]\n\n` +
        `[schedule]\ncheck = "*/5 * * * * *"\njitter = 0\n\n` +
        `[docker]\nproject_name = "${project}"\nstop_timeout = 2\n\n[health]\ntimeout = 60\nsettle = 2\n` +
        `critical = ["web"]\n`,
    );
    if (tag) nuwax(['--home', home, 'upgrade', '--yes']);
    else writeFileSync(path.join(home, 'config.toml'), `[versions]\ndocker_service = "1.0.0"\n`, { flag: 'a' });

    const idle = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)'], { stdio: 'ignore' });
    children.push(idle);
    const daemon = spawn(process.execPath, [cli, '--home', home, 'daemon'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(daemon);
    let output = '';
    daemon.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    daemon.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const results = () => [...output.matchAll(/^result: (\S+)/gm)].map((match) => match[1]!);
    const waitFor = async (check: () => boolean, what: string) => {
      const deadline = Date.now() + 180_000;
      while (!check()) {
        if (daemon.exitCode !== null || Date.now() > deadline) throw new Error(`${what}: ${output.slice(-2000)}`);
        await sleep(100);
      }
      // The child that ran the cycle exits after its result line: read the parent alone.
      await sleep(1500);
    };
    await sleep(3000);
    const node = status(idle.pid!, 'VmRSS');
    const started = status(daemon.pid!, 'VmRSS');
    await waitFor(() => results().length >= 1, 'a first cycle');
    if (results()[0] !== 'up_to_date') throw new Error(`the first cycle ended ${results()[0]}: ${output.slice(-2000)}`);
    const afterCycle = status(daemon.pid!, 'VmRSS');
    let afterUpgrades: number | null = null;
    if (tag) {
      for (const version of ['1.1.0', '1.2.0']) {
        const before = results().length;
        releases.offer(version);
        await waitFor(() => results().slice(before).includes('success'), `the upgrade to ${version}`);
      }
      const before = results().length;
      await waitFor(() => results().slice(before).includes('up_to_date'), 'an up-to-date cycle after the upgrades');
      afterUpgrades = status(daemon.pid!, 'VmRSS');
    }
    const peak = status(daemon.pid!, 'VmHWM');
    return { node, started, afterCycle, afterUpgrades, peak };
  } finally {
    for (const child of children.reverse()) await stop(child);
    const ids = spawnSync('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], {
      encoding: 'utf8',
    })
      .stdout?.split('\n')
      .filter(Boolean);
    if (ids?.length) spawnSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  }
}

const docker = dockerReachable();
const tag = docker ? `nuwax-bench-daemon-idle-${process.pid}:1` : null;
if (tag) importBusyboxImage(tag);
else console.log('daemon-idle: Docker is not reachable; the two upgrades are left out');
const runs: Run[] = [];
const mib = (value: number) => `${value.toFixed(1)} MiB`;
try {
  for (let index = 0; index < RUNS; index += 1) {
    const run = await oneRun(tag);
    runs.push(run);
    console.log(
      `run ${index + 1}: node -e ${mib(run.node)}; daemon after start ${mib(run.started)}, ` +
        `after a cycle ${mib(run.afterCycle)}` +
        `${run.afterUpgrades === null ? '' : `, after two upgrades ${mib(run.afterUpgrades)}`}, peak ${mib(run.peak)}`,
    );
  }
} finally {
  if (tag) removeImages([tag]);
}
const idleOf = (run: Run) => Math.max(run.started, run.afterCycle, run.afterUpgrades ?? 0);
const idle = median(runs.map(idleOf));
const node = median(runs.map((run) => run.node));
reportRow({
  what: `daemon idle RSS (${docker ? 'two upgrades in between' : 'cycles up to date; no Docker, no upgrades'})`,
  standard: `node -e: ${mib(node)}`,
  nuwax: `${mib(idle)} idle (${(idle / node).toFixed(2)}x node), ` + `peak ${mib(median(runs.map((run) => run.peak)))}`,
  goal: `<= ${GOAL_MIB} MiB idle`,
  met: runs.every((run) => idleOf(run) <= GOAL_MIB),
  runs: runs.map(
    (run) =>
      `node ${mib(run.node)}; start ${mib(run.started)}, cycle ${mib(run.afterCycle)}` +
      `${run.afterUpgrades === null ? '' : `, upgrades ${mib(run.afterUpgrades)}`}, peak ${mib(run.peak)}`,
  ),
});
