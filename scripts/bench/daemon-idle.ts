/**
 * `npm run bench:daemon-idle`: the resident memory of an idle `nuwax daemon` against `node -e`
 * (an idle Node process) in the same run. The daemon checks a local manifest server every 5 s
 * (`[schedule] check = "*\/5 * * * * *"`, no jitter) that offers the installed version, so each
 * cycle is a real check that ends up to date. RSS (VmRSS) is read from /proc after start-up, after
 * the first cycle and after three more. Goal: idle <= 60 MiB. RUNS (default 3).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const RUNS = Number(process.env.RUNS ?? 3);
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
  return kib / 1024;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

interface Run {
  node: number;
  started: number;
  afterCycle: number;
  afterFour: number;
}

async function oneRun(manifestUrl: string): Promise<Run> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'nuwax-bench-daemon-'));
  mkdirSync(path.join(home, 'docker'));
  writeFileSync(path.join(home, 'docker', 'VERSION'), '1.0.0');
  writeFileSync(
    path.join(home, 'config.toml'),
    `[versions]\ndocker_service = "1.0.0"\n\n[server]\nmanifest_url = "${manifestUrl}"\n\n` +
      `[security]\nallow_unverified = true\n\n[schedule]\ncheck = "*/5 * * * * *"\njitter = 0\n`,
  );
  const idle = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  const daemon = spawn(process.execPath, [cli, '--home', home, 'daemon'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    let cycles = 0;
    daemon.stdout!.on('data', (chunk: Buffer) => {
      cycles += (chunk.toString().match(/result: /g) ?? []).length;
    });
    await sleep(1500);
    const node = rssMiB(idle.pid!);
    const started = rssMiB(daemon.pid!);
    while (cycles < 1) await sleep(100);
    await sleep(500);
    const afterCycle = rssMiB(daemon.pid!);
    while (cycles < 4) await sleep(100);
    await sleep(500);
    const afterFour = rssMiB(daemon.pid!);
    return { node, started, afterCycle, afterFour };
  } finally {
    await Promise.all([stop(daemon), stop(idle)]);
    rmSync(home, { recursive: true, force: true });
  }
}

const server = createServer((_request, response) => {
  const body = JSON.stringify({
    version: '1.0.0',
    platforms: { x86_64: { url: 'a.tar.gz', hash: 'a'.repeat(64), size: 1 } },
  });
  response.writeHead(200, { 'content-type': 'application/json' }).end(body);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as { port: number };
const manifestUrl = `http://127.0.0.1:${port}/manifest.json`;
const runs: Run[] = [];
try {
  for (let index = 0; index < RUNS; index += 1) {
    const run = await oneRun(manifestUrl);
    runs.push(run);
    const fmt = (value: number) => `${value.toFixed(1)} MiB`;
    console.log(
      `run ${index + 1}: node -e ${fmt(run.node)}; daemon after start ${fmt(run.started)}, ` +
        `after a cycle ${fmt(run.afterCycle)}, after four ${fmt(run.afterFour)} ` +
        `(${(run.afterFour / run.node).toFixed(2)}x node; goal <= 60 MiB: ${run.afterFour <= 60 ? 'met' : 'missed'})`,
    );
  }
} finally {
  server.close();
}
