import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dockerReachable, type SampleVersion, trafficScript } from '../../scripts/lib/sample-app.js';
import { runCli } from '../helpers/cli.js';
import { freePort, projectContainers } from '../helpers/docker.js';
import { snapshot } from '../helpers/tree.js';
import { storeRows } from '../repair/box.js';
import { buildRelease, cleanup, cli, makeImage, type Releases, startReleases, uniqueId, writeHome } from './fixture.js';

/**
 * docker/traffic.sh end to end: the real CLI, releases served on 127.0.0.1, the real Docker engine.
 * The sample's traffic.sh traces each call in <home>/traffic.log with whether web answered then.
 */
const docker = dockerReachable();
const skip = !docker && process.env.NUWAX_REQUIRE_DOCKER !== '1';
if (!docker && !skip) throw new Error('NUWAX_REQUIRE_DOCKER=1 but Docker is not reachable');

const id = uniqueId();
const tag = `nuwax-traffic-${id}:a`;
const project = `nuwaxtraffic${id}`;
let work = '';
let home = '';
let releases: Releases | undefined;
const channels: Record<string, string> = {};
const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';

async function channel(name: string, sample: SampleVersion): Promise<string> {
  const dir = await buildRelease(path.join(work, name), sample);
  const out = path.join(work, 'packages', name);
  mkdirSync(out, { recursive: true });
  const file = path.join(out, `full-${sample.version}.tar.gz`);
  await cli(['release', 'pack', dir, '--version', sample.version, '--arch', arch, '-o', file]);
  await releases!.publish(name, { version: sample.version, packages: [file] });
  return `${releases!.server.url}/${name}/manifest.json`;
}

const upgrade = (...args: string[]) =>
  runCli(['--home', home, '--json', 'upgrade', '--yes', ...args], { timeoutMs: 240_000 });
const trafficLog = () =>
  existsSync(path.join(home, 'traffic.log'))
    ? readFileSync(path.join(home, 'traffic.log'), 'utf8').trim().split('\n')
    : [];
const useChannel = (name: string) => writeHome(home, { url: channels[name]!, project });
const containerIds = async () => (await projectContainers(project)).map((item) => item.id).sort();

before(async () => {
  if (skip) return;
  work = await mkdtemp(path.join(os.tmpdir(), 'nuwax-traffic-'));
  home = path.join(work, 'box');
  releases = await startReleases(work);
  makeImage(tag, releases.tags);
  const port = await freePort();
  const A: SampleVersion = { version: '1.0.0', port, imageTag: tag, page: 'A', traffic: 'ok' };
  channels.a = await channel('a', A);
  channels.b = await channel('b', { ...A, version: '1.1.0', page: 'B' });
  channels.broken = await channel('broken', { ...A, version: '1.2.0', page: 'broken', brokenWeb: true });
  channels.c = await channel('c', { ...A, version: '1.3.0', page: 'C' });
});

after(async () => {
  if (skip) return;
  cleanup(releases, [project]);
  await releases?.server.stop();
  await rm(work, { recursive: true, force: true });
});

describe('traffic.sh around the switch, with the real Docker engine', { skip, concurrency: false }, () => {
  test('a first install has no traffic.sh to call yet', async () => {
    useChannel('a');
    const run = await upgrade();
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(trafficLog(), []);
    assert.equal(run.json().traffic, undefined);
  });

  test('upgrade --dry-run prints the plan from the step table and changes nothing', async () => {
    useChannel('b');
    const before = { tree: await snapshot(home), rows: storeRows(home), containers: await containerIds() };
    const run = await runCli(['--home', home, '--json', 'upgrade', '--dry-run']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const plan = run.json();
    assert.equal(plan.status, 'planned');
    assert.equal(plan.from, '1.0.0');
    assert.equal(plan.to, '1.1.0');
    const steps = plan.steps as Array<{ name: string; skipped?: string }>;
    assert.equal(steps.find((step) => step.name === 'traffic_off')?.skipped, undefined);
    assert.ok(
      steps.findIndex((step) => step.name === 'traffic_off') < steps.findIndex((step) => step.name === 'stopping'),
    );
    assert.deepEqual(
      (plan.scripts as string[]).filter((item) => item.startsWith('traffic.sh')),
      ['traffic.sh off --format=json', 'traffic.sh on --format=json'],
    );
    assert.ok((plan.files as { replace: string[] }).replace.includes('docker-compose.yml'));
    assert.ok((plan.disk as { needed: number }).needed > 0);
    assert.deepEqual({ tree: await snapshot(home), rows: storeRows(home), containers: await containerIds() }, before);
    assert.deepEqual(trafficLog(), []);
  });

  test('off before the services stop, on once the new version is healthy; the result records both', async () => {
    const run = await upgrade();
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(trafficLog(), ['off web=up', 'on web=up']);
    assert.equal(existsSync(path.join(home, 'docker', 'data', 'maintenance.flag')), false);
    const traffic = run.json().traffic as { off: { success: boolean }; on: { success: boolean } };
    assert.equal(traffic.off.success, true);
    assert.equal(traffic.on.success, true);
  });

  test('a release that fails its health check: rolled back, then on once the old version is healthy', async () => {
    useChannel('broken');
    const run = await upgrade();
    assert.equal(run.code, 4, run.stdout + run.stderr);
    assert.deepEqual(trafficLog().slice(2), ['off web=up', 'on web=up']);
    assert.equal(existsSync(path.join(home, 'docker', 'data', 'maintenance.flag')), false);
    assert.equal((run.json().traffic as { on: { success: boolean } }).on.success, true);
    assert.equal(await fetch(`http://127.0.0.1:${readPort()}/index.html`).then((response) => response.text()), 'B\n');
  });

  test('a failing off ends the upgrade with nothing changed (exit 1): files, rows but its own, containers', async () => {
    writeFileSync(path.join(home, 'docker', 'traffic.sh'), trafficScript(readPort(), 'failing-off'), { mode: 0o755 });
    useChannel('c');
    const docker = await snapshot(path.join(home, 'docker'));
    const ids = await containerIds();
    const backups = storeRows(home).backups!.length;
    const run = await upgrade();
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const result = run.json();
    assert.equal(result.changed, false);
    assert.equal(result.step, 'traffic_off');
    assert.equal((result.error as { code: string }).code, 'E_TRAFFIC');
    assert.deepEqual(await snapshot(path.join(home, 'docker')), docker);
    assert.deepEqual(await containerIds(), ids);
    assert.equal(storeRows(home).backups!.length, backups);
    assert.deepEqual(trafficLog().slice(4), ['off web=up']);
  });
});

/** The port web listens on, from the installed compose file. */
function readPort(): number {
  const compose = readFileSync(path.join(home, 'docker', 'docker-compose.yml'), 'utf8');
  return Number(/127\.0\.0\.1:(\d+)"/.exec(compose)![1]);
}
