/**
 * Image-layer deltas: an application image of about 200 MiB in five layers (busybox base, four
 * dependency layers, one ~5 MiB application layer), built offline with the legacy builder, then a
 * second version that rewrites only the application layer. Prints the patch's size against the
 * changed layer, the time to rebuild the full archive from the thin one plus `docker load` of it
 * against `docker load` of the full archive, and the rebuild's peak RSS (measured in a process of its own,
 * image-delta-rebuild.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { patchRelease } from '../../src/release/index.js';
import { buildBaseImage, buildLayeredImage } from '../lib/layered-image.js';
import { removeImages } from '../lib/sample-app.js';
import { median, reportRow } from './report.js';

const MiB = 1024 * 1024;
const RUNS = Number(process.env.RUNS ?? 3);
const APP = Number(process.env.APP_MIB ?? 5) * MiB;
const LAYERS = [
  { name: 'deps-1', bytes: 80 * MiB },
  { name: 'deps-2', bytes: 60 * MiB },
  { name: 'deps-3', bytes: 40 * MiB },
  { name: 'deps-4', bytes: 10 * MiB },
  { name: 'app', bytes: APP },
];

function docker(args: string[]): void {
  const result = spawnSync('docker', args, { stdio: ['ignore', 'ignore', 'inherit'] });
  if (result.status !== 0) throw new Error(`docker ${args.join(' ')} exited ${result.status}`);
}

function timed(run: () => void): number {
  const started = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(2)} MiB`;

function deployment(dir: string, tag: string, archive: string): void {
  mkdirSync(path.join(dir, 'images'), { recursive: true });
  writeFileSync(path.join(dir, 'docker-compose.yml'), `services:\n  app:\n    image: ${tag}\n`);
  docker(['save', '-o', path.join(dir, 'images', archive), tag]);
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'nuwax-bench-delta-'));
  const id = `${process.pid}`;
  const tags = { base: `nuwax-bench-delta-${id}:base`, a: `nuwax-bench-delta-${id}:a`, b: `nuwax-bench-delta-${id}:b` };
  try {
    buildBaseImage(tags.base);
    const context = path.join(work, 'context');
    buildLayeredImage(tags.a, tags.base, context, LAYERS);
    buildLayeredImage(tags.b, tags.base, context, LAYERS, ['app']);
    const oldDir = path.join(work, 'old');
    const newDir = path.join(work, 'new');
    deployment(oldDir, tags.a, 'app.tar');
    deployment(newDir, tags.b, 'app.tar');
    const full = path.join(newDir, 'images', 'app.tar');
    const patch = path.join(work, 'patch.tar.gz');
    const sidecar = await patchRelease({ oldDir, newDir, from: '1.0.0', to: '1.0.0.1', arch: 'x86_64', output: patch });
    const nonImage = statSync(path.join(newDir, 'docker-compose.yml')).size;
    console.log(`image archive ${mib(statSync(full).size)} in ${LAYERS.length + 1} layers; changed layer ${mib(APP)}`);
    console.log(
      `patch ${mib(sidecar.size)} = ${((sidecar.size / APP) * 100).toFixed(1)} % of the changed layer ` +
        `(goal <= 110 % + ${nonImage} B of other files)`,
    );

    const runs: { total: number; loadFull: number; rssMiB: number }[] = [];
    for (let run = 0; run < RUNS; run += 1) {
      // The box: the old release's archive in docker/images/, the patch's thin archive staged.
      const stagedRoot = path.join(work, `staged-${run}`);
      const staged = path.join(stagedRoot, 'images');
      mkdirSync(staged, { recursive: true });
      spawnSync('tar', ['-xzf', patch, '-C', stagedRoot, 'images/app.tar']);
      removeImages([tags.b]);
      const script = fileURLToPath(new URL('./image-delta-rebuild.js', import.meta.url));
      // The CLI's V8 flags (src/cli/main.ts), as the rebuild runs inside `nuwax upgrade`.
      const rebuild = spawnSync(process.execPath, ['--liftoff-only', '--expose-gc', script, staged, oldDir], {
        encoding: 'utf8',
      });
      if (rebuild.status !== 0) throw new Error(`rebuild failed: ${rebuild.stderr}`);
      const measured = JSON.parse(rebuild.stdout.trim().split('\n').at(-1)!) as { ms: number; maxRssKiB: number };
      const rebuilt = path.join(staged, 'app.tar');
      const loadRebuilt = timed(() => docker(['load', '-i', rebuilt]));
      removeImages([tags.b]);
      const loadFull = timed(() => docker(['load', '-i', full]));
      rmSync(stagedRoot, { recursive: true, force: true });
      const total = measured.ms + loadRebuilt;
      const rssMiB = measured.maxRssKiB / 1024;
      runs.push({ total, loadFull, rssMiB });
      console.log(
        `run ${run + 1}: rebuild ${measured.ms.toFixed(0)} ms + docker load ${loadRebuilt.toFixed(0)} ms = ` +
          `${total.toFixed(0)} ms; docker load of the full archive ${loadFull.toFixed(0)} ms ` +
          `(${(total / loadFull).toFixed(2)}x); rebuild peak RSS ${rssMiB.toFixed(1)} MiB`,
      );
    }
    const patchShare = sidecar.size / APP;
    const peak = Math.max(...runs.map((run) => run.rssMiB));
    reportRow({
      what: `patch of a ${mib(statSync(full).size)} image (${LAYERS.length + 1} layers) whose ${mib(APP)} app layer changed`,
      standard: `the whole archive in the patch; \`docker load\` of it ${(median(runs.map((run) => run.loadFull)) / 1000).toFixed(2)} s`,
      nuwax:
        `patch ${mib(sidecar.size)} (${(patchShare * 100).toFixed(1)} % of the changed layer); rebuild + load ` +
        `${(median(runs.map((run) => run.total)) / 1000).toFixed(2)} s; rebuild peak RSS ${peak.toFixed(1)} MiB`,
      goal: 'patch <= 110 % of the changed layers; rebuild <= 80 MiB',
      met: patchShare <= 1.1 && peak <= 80,
      runs: runs.map(
        (run) =>
          `rebuild + load ${(run.total / 1000).toFixed(2)} s vs load ${(run.loadFull / 1000).toFixed(2)} s, ` +
          `${run.rssMiB.toFixed(1)} MiB`,
      ),
    });
  } finally {
    removeImages([tags.b, tags.a, tags.base]);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
