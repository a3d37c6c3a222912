/**
 * `npm run bench:downtime`: the downtime of the demo's patch upgrade (1.0.0 -> 1.0.0.1, busybox
 * httpd with a Docker healthcheck) against compose's own `docker-compose stop` + `up -d` + the time
 * until the container reports healthy, on the same app in the same run. Each run builds a fresh box
 * (the demo's releases, served by `nuwax serve`), installs 1.0.0, upgrades by patch, then times
 * compose's stop/up/healthy. Prints nuwax's downtime, its breakdown, compose's with its parts (stop,
 * up, healthy by Docker's HEALTHCHECK; and, for comparison only, healthy by nuwax's own rule: the
 * worker's settle time too), the machine's load, and the difference (goal: nuwax <= compose + 0.5 s).
 * RUNS (default 3). Needs Docker; skips without it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspectProject, judge } from '../../src/runtime/index.js';
import {
  dockerReachable,
  importBusyboxImage,
  removeImages,
  type SampleVersion,
  writeSampleVersion,
} from '../lib/sample-app.js';
import { median, reportRow } from './report.js';
import { freePort } from '../lib/local-server.js';

const RUNS = Number(process.env.RUNS ?? 3);
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';

function nuwax(args: string[]): string {
  return nuwaxMeasured(args).stdout;
}

/** Runs nuwax under GNU time (when present) for its peak RSS, in KiB (0 without it). */
function nuwaxMeasured(args: string[]): { stdout: string; peakKiB: number } {
  const timed = existsSync('/usr/bin/time');
  const command = timed ? '/usr/bin/time' : process.execPath;
  const prefix = timed ? ['-f', '@@peak %M', process.execPath] : [];
  const result = spawnSync(command, [...prefix, cli, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`nuwax ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  const peak = /@@peak (\d+)/.exec(result.stderr)?.[1];
  return { stdout: result.stdout, peakKiB: Number(peak ?? 0) };
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string, limitMs = 60_000): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < limitMs) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what} did not happen within ${limitMs} ms`);
}

function healthOf(project: string): string {
  const ids = spawnSync('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`], {
    encoding: 'utf8',
  }).stdout.trim();
  if (!ids) return 'none';
  return spawnSync('docker', ['inspect', '--format', '{{.State.Health.Status}}', ...ids.split('\n')], {
    encoding: 'utf8',
  }).stdout.trim();
}

/** Every service decided healthy as nuwax judges it (HEALTHCHECK, settle time, one-shot exited 0). */
async function healthyByRule(project: string, settleMs: number): Promise<boolean> {
  const containers = await inspectProject(project);
  const now = Date.now();
  return (
    containers.length > 0 &&
    containers.every((container) => {
      const verdict = judge(container, settleMs, now);
      return verdict.decided && verdict.healthy;
    })
  );
}

const SETTLE_MS = 3000;

interface Run {
  nuwaxMs: number;
  peakKiB: number;
  breakdown: Record<string, number>;
  composeMs: number;
  /** compose's parts: stop, up, healthy (Docker's HEALTHCHECK), and settled (nuwax's rule, after healthy). */
  compose: { stop: number; up: number; healthy: number; settled: number };
  /** os.loadavg() when the run ended: 1, 5 and 15 minutes. */
  load: number[];
}

async function oneRun(tag: string): Promise<Run> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'nuwax-bench-downtime-'));
  const project = `nuwaxbench${process.pid}${Date.now() % 100000}`;
  const appPort = await freePort();
  let server: ChildProcess | undefined;
  try {
    const A: SampleVersion = {
      version: '1.0.0',
      port: appPort,
      imageTag: tag,
      page: 'Hello from 1.0.0',
      files: { 'app/config.ini': 'mode=a\n' },
    };
    const B: SampleVersion = {
      ...A,
      version: '1.0.0.1',
      page: 'Hello from 1.0.0.1',
      files: { 'app/config.ini': 'mode=b\n', 'app/feature.txt': 'new\n' },
      migrations: { 'up-1.0.0.1.sh': '#!/bin/sh\necho migrated >> data/migrations.log\n' },
    };
    const versions = path.join(work, 'versions');
    const stable = path.join(work, 'site', 'stable');
    mkdirSync(stable, { recursive: true });
    for (const sample of [A, B]) writeSampleVersion(path.join(versions, sample.version), sample);
    nuwax(['release', 'keygen', '-o', path.join(work, 'signing')]);
    const key = path.join(work, 'signing.key');
    const manifest = path.join(stable, 'manifest.json');
    const full = (version: string) => path.join(stable, `app-${version}.tar.gz`);
    const pack = (version: string) =>
      nuwax([
        'release',
        'pack',
        path.join(versions, version),
        '--version',
        version,
        '--arch',
        arch,
        '-o',
        full(version),
      ]);
    pack('1.0.0');
    nuwax(['release', 'manifest', '--version', '1.0.0', '-o', manifest, full('1.0.0')]);
    nuwax(['release', 'sign', manifest, '-k', key]);
    const port = await freePort();
    server = spawn(process.execPath, [cli, 'serve', path.join(work, 'site'), '--port', String(port)], {
      stdio: 'ignore',
    });
    const manifestUrl = `http://127.0.0.1:${port}/stable/manifest.json`;
    await waitFor(
      () =>
        fetch(manifestUrl).then(
          (response) => response.ok,
          () => false,
        ),
      'the release server',
    );
    const home = path.join(work, 'box');
    mkdirSync(home, { recursive: true });
    const publicKey = readFileSync(path.join(work, 'signing.pub'), 'utf8').trim();
    writeFileSync(
      path.join(home, 'config.toml'),
      `[server]\nmanifest_url = "${manifestUrl}"\n\n[security]\npublic_keys = ["${publicKey}"]\n\n` +
        `[docker]\nproject_name = "${project}"\nstop_timeout = 2\n\n[health]\ntimeout = 60\n` +
        `settle = ${SETTLE_MS / 1000}\ncritical = ["web"]\n`,
    );
    nuwax(['--home', home, 'upgrade', '--yes']);

    pack('1.0.0.1');
    const patch = path.join(stable, 'patch-1.0.0.1.tar.gz');
    const versionDir = (version: string) => path.join(versions, version);
    nuwax(
      ['release', 'patch', versionDir('1.0.0'), versionDir('1.0.0.1')].concat([
        '--from',
        '1.0.0',
        '--to',
        '1.0.0.1',
        '--arch',
        arch,
        '-o',
        patch,
      ]),
    );
    nuwax(['release', 'manifest', '--version', '1.0.0.1', '-o', manifest, full('1.0.0.1'), patch]);
    nuwax(['release', 'sign', manifest, '-k', key]);
    // --json prints the events, one a line, the result last.
    const upgraded = nuwaxMeasured(['--home', home, '--json', 'upgrade', '--yes']);
    const lines = upgraded.stdout.trim().split('\n');
    const last = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
    const result = (last.type === 'result' ? last.result : last) as {
      status: string;
      strategy: string;
      downtime_ms: number;
      downtime?: Record<string, number>;
    };
    if (result.status !== 'success' || result.strategy !== 'patch')
      throw new Error(`the patch upgrade ended ${JSON.stringify(result)}`);

    // compose's own stop + up -d + healthy, on the same app and project.
    await waitFor(() => healthOf(project) === 'healthy', 'the upgraded app healthy');
    const compose = ['-p', project, '-f', path.join(home, 'docker', 'docker-compose.yml')];
    const clock = () => Number(process.hrtime.bigint()) / 1e6;
    const started = clock();
    spawnSync('docker-compose', [...compose, 'stop', '-t', '2'], { stdio: 'ignore' });
    const stopped = clock();
    spawnSync('docker-compose', [...compose, 'up', '-d'], { stdio: 'ignore' });
    const up = clock();
    await waitFor(() => healthOf(project) === 'healthy', 'compose up healthy');
    const healthy = clock();
    // Not part of the standard's figure: how long nuwax's rule (the worker's settle) takes on top.
    await waitFor(() => healthyByRule(project, SETTLE_MS), 'compose up healthy by nuwax rule');
    const settled = clock();
    return {
      nuwaxMs: result.downtime_ms,
      peakKiB: upgraded.peakKiB,
      breakdown: result.downtime ?? {},
      composeMs: healthy - started,
      compose: {
        stop: Math.round(stopped - started),
        up: Math.round(up - stopped),
        healthy: Math.round(healthy - up),
        settled: Math.round(settled - healthy),
      },
      load: os.loadavg(),
    };
  } finally {
    server?.kill('SIGTERM');
    const ids = spawnSync('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], {
      encoding: 'utf8',
    })
      .stdout.split('\n')
      .filter(Boolean);
    if (ids.length) spawnSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const GOAL_MS = 500;

if (!dockerReachable()) {
  console.log('downtime: Docker is not reachable, skipped');
} else {
  const tag = `nuwax-bench-downtime-${process.pid}:1`;
  importBusyboxImage(tag);
  const runs: Run[] = [];
  const described: string[] = [];
  try {
    for (let index = 0; index < RUNS; index += 1) {
      const run = await oneRun(tag);
      runs.push(run);
      const parts = Object.entries(run.breakdown)
        .map(([name, ms]) => `${name} ${ms}`)
        .join(', ');
      const { stop, up, healthy, settled } = run.compose;
      described.push(
        `nuwax ${seconds(run.nuwaxMs)} (${parts}), compose ${seconds(run.composeMs)} ` +
          `(stop ${stop}, up ${up}, healthy ${healthy}; with nuwax's settle rule +${settled}: ` +
          `${seconds(run.composeMs + settled)}, difference ${seconds(run.nuwaxMs - run.composeMs - settled)}), ` +
          `${(run.nuwaxMs / run.composeMs).toFixed(2)}x, difference ${seconds(run.nuwaxMs - run.composeMs)}, ` +
          `peak RSS ${(run.peakKiB / 1024).toFixed(0)} MiB, load ${run.load.map((value) => value.toFixed(1)).join(' ')}`,
      );
      console.log(`run ${index + 1}: ${described.at(-1)}`);
    }
  } finally {
    removeImages([tag]);
  }
  const nuwaxMs = median(runs.map((run) => run.nuwaxMs));
  const composeMs = median(runs.map((run) => run.composeMs));
  const differenceMs = median(runs.map((run) => run.nuwaxMs - run.composeMs));
  const peakMiB = Math.max(...runs.map((run) => run.peakKiB)) / 1024;
  reportRow({
    what: "downtime of the demo's patch upgrade",
    standard: `\`docker-compose stop\` + \`up -d\` + time to healthy: ${seconds(composeMs)}`,
    nuwax:
      `${seconds(nuwaxMs)} (${(nuwaxMs / composeMs).toFixed(2)}x, ${differenceMs >= 0 ? '+' : ''}` +
      `${seconds(differenceMs)}), peak RSS ${peakMiB.toFixed(0)} MiB`,
    goal: '<= compose + 0.5 s',
    met: differenceMs <= GOAL_MS,
    runs: described,
  });
}
