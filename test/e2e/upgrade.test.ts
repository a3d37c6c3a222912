import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dockerReachable, type SampleVersion } from '../../scripts/lib/sample-app.js';
import { CLI_PATH, runCli } from '../helpers/cli.js';
import { makeImmutable, makeMutable } from '../helpers/readonly.js';
import { snapshot } from '../helpers/tree.js';
import { buildRelease, cleanup, cli, makeImage, type Releases, startReleases, uniqueId, writeHome } from './fixture.js';

/**
 * Issue 6, end to end: the real CLI, a real release server on 127.0.0.1, the real Docker engine.
 * Skipped without Docker unless NUWAX_REQUIRE_DOCKER=1 (CI), where a missing engine fails.
 */
const docker = dockerReachable();
const skip = !docker && process.env.NUWAX_REQUIRE_DOCKER !== '1';
if (!docker && !skip) throw new Error('NUWAX_REQUIRE_DOCKER=1 but Docker is not reachable');

const id = uniqueId();
const port = 20000 + Math.floor(Math.random() * 20000);
const tagA = `nuwax-e2e-${id}:a`;
const tagB = `nuwax-e2e-${id}:b`;
const tagC = `nuwax-e2e-${id}:c`;
const projects: string[] = [];
let work = '';
let releases: Releases | undefined;

const log = (name: string, exit = 0, file = 'data/migrations.log') =>
  `#!/bin/sh\necho ${name} >> ${file}\nexit ${exit}\n`;
/** Outside docker/: the restore puts data/ back as it was, so the order of the scripts is traced beside it. */
const trace = (name: string, exit = 0) => log(name, exit, '../trace.log');
const A: SampleVersion = {
  version: '1.0.0',
  port,
  imageTag: tagA,
  page: 'A',
  files: { 'app/config.ini': 'mode=a\n', 'app/keep.txt': 'unchanged\n' },
};
const B: SampleVersion = {
  ...A,
  version: '1.0.0.1',
  imageTag: tagA,
  page: 'B',
  files: { 'app/config.ini': 'mode=b\n', 'app/keep.txt': 'unchanged\n', 'app/new.txt': 'new in B\n' },
  migrations: { 'up-1.0.0.1.sh': log('up-1.0.0.1'), 'down-1.0.0.1.sh': log('down-1.0.0.1') },
};
const C: SampleVersion = {
  ...A,
  version: '1.1.0',
  imageTag: tagC,
  page: 'C',
  files: { 'app/config.ini': 'mode=c\n' },
  migrations: { 'up-1.1.0.sh': log('up-1.1.0'), 'down-1.1.0.sh': log('down-1.1.0') },
};

async function channel(
  name: string,
  version: SampleVersion,
  options: { patchFrom?: SampleVersion } = {},
): Promise<string> {
  const dir = await buildRelease(path.join(work, name), version);
  const out = path.join(work, 'packages', name);
  mkdirSync(out, { recursive: true });
  const packages = [path.join(out, `full-${version.version}.tar.gz`)];
  await cli([
    'release',
    'pack',
    dir,
    '--version',
    version.version,
    '--arch',
    process.arch === 'arm64' ? 'aarch64' : 'x86_64',
    '-o',
    packages[0]!,
  ]);
  if (options.patchFrom) {
    const old = await buildRelease(path.join(work, `${name}-base`), options.patchFrom);
    packages.push(path.join(out, `patch-${version.version}.tar.gz`));
    await cli([
      'release',
      'patch',
      old,
      dir,
      '--from',
      options.patchFrom.version,
      '--to',
      version.version,
      '--arch',
      process.arch === 'arm64' ? 'aarch64' : 'x86_64',
      '-o',
      packages[1]!,
    ]);
  }
  await releases!.publish(name, { version: version.version, packages });
  return `${releases!.server.url}/${name}/manifest.json`;
}

const channels: Record<string, string> = {};

before(async () => {
  if (skip) return;
  work = await mkdtemp(path.join(os.tmpdir(), 'nuwax-e2e-'));
  releases = await startReleases(work);
  makeImage(tagA, releases.tags);
  makeImage(tagB, releases.tags);
  makeImage(tagC, releases.tags);
  channels.a = await channel('a', A);
  channels.b = await channel('b', B, { patchFrom: A });
  channels.c = await channel('c', C);
  channels.migrationFails = await channel('migration-fails', {
    ...C,
    migrations: {
      'up-1.0.5.sh': `echo corrupted > data/db.txt\n${trace('up-1.0.5')}`,
      'down-1.0.5.sh': trace('down-1.0.5'),
      'up-1.1.0.sh': trace('up-1.1.0', 3),
      'down-1.1.0.sh': trace('down-1.1.0'),
    },
  });
  channels.withoutWorker = await channel(
    'without-worker',
    { ...B, version: '1.0.0.2', withoutWorker: true },
    {
      patchFrom: B,
    },
  );
  channels.upFails = await channel('up-fails', { ...C, brokenUp: true });
  channels.critical = await channel('critical', { ...C, brokenWeb: true });
  channels.noncritical = await channel('noncritical', { ...C, brokenWorker: true });
});

after(async () => {
  if (skip) return;
  cleanup(releases, projects);
  await releases?.server.stop();
  await rm(work, { recursive: true, force: true });
});

async function home(name: string, manifest: string): Promise<{ home: string; project: string }> {
  // Every scenario serves the same port: stop the previous scenarios' services first.
  cleanup(undefined, projects);
  const project = `nuwaxe2e${id}${name.replace(/[^a-z0-9]/g, '')}`;
  projects.push(project);
  const directory = path.join(work, 'homes', name);
  writeHome(directory, { url: manifest, project });
  return { home: directory, project };
}

function setChannel(homeDir: string, manifest: string): void {
  const file = path.join(homeDir, 'config.toml');
  writeFileSync(file, readFileSync(file, 'utf8').replace(/manifest_url = ".*"/, `manifest_url = "${manifest}"`));
}

const upgrade = (homeDir: string, ...extra: string[]) =>
  runCli(['--home', homeDir, '--json', 'upgrade', '--yes', ...extra], { timeoutMs: 300_000 });

async function page(): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/index.html`).catch(() => null);
  return response?.ok ? (await response.text()).trim() : '(down)';
}

/** The tree of docker/ without data/init.log, which the one-shot init service appends to at every start. */
async function deployment(homeDir: string): Promise<Record<string, string>> {
  const tree = await snapshot(path.join(homeDir, 'docker'));
  delete tree['data/init.log'];
  return tree;
}

/** Each container of a compose project with the time it started: a stop and start changes both. */
function containers(project: string): string[] {
  const ids = execFileSync('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], {
    encoding: 'utf8',
  })
    .trim()
    .split('\n')
    .filter(Boolean);
  if (ids.length === 0) return [];
  return execFileSync('docker', ['inspect', '--format', '{{.Id}} {{.State.StartedAt}} {{.State.Status}}', ...ids], {
    encoding: 'utf8',
  })
    .trim()
    .split('\n')
    .sort();
}

/** Each service's container (stopped ones too): id and start time. */
function containersByService(project: string): Record<string, { id: string; startedAt: string }> {
  const lines = execFileSync(
    'docker',
    ['ps', '-aq', '--no-trunc', '--filter', `label=com.docker.compose.project=${project}`],
    { encoding: 'utf8' },
  )
    .trim()
    .split('\n')
    .filter(Boolean);
  if (lines.length === 0) return {};
  const format = '{{index .Config.Labels "com.docker.compose.service"}} {{.Id}} {{.State.StartedAt}}';
  const inspected = execFileSync('docker', ['inspect', '--format', format, ...lines], { encoding: 'utf8' });
  return Object.fromEntries(
    inspected
      .trim()
      .split('\n')
      .map((line) => line.split(' '))
      .map(([service, containerId, startedAt]) => [service!, { id: containerId!, startedAt: startedAt! }]),
  );
}

/** Installs A, ready for an upgrade scenario; the data folder holds the app's state. */
async function installA(name: string): Promise<string> {
  const { home: homeDir } = await home(name, channels.a!);
  const run = await upgrade(homeDir);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  writeFileSync(path.join(homeDir, 'docker', 'data', 'db.txt'), 'rows of A\n');
  return homeDir;
}

interface Evidence {
  compose: string;
  services: Array<{
    service: string;
    status: string;
    exitCode: number;
    oomKilled: boolean;
    restartCount: number;
    health: string | null;
    healthcheck: string | null;
    healthLog: Array<{ exitCode: number; output: string }>;
    logs: string[];
  }>;
}

/**
 * The bundle keeps what the failed release's containers looked like before the rollback removed them,
 * and the diagnosis names the failing probe from it, advising only about the service that failed.
 */
function assertHealthEvidence(homeDir: string, result: Record<string, unknown>): void {
  const bundle = path.join(homeDir, 'logs', 'failures', String(result.upgrade_id));
  const evidence = JSON.parse(readFileSync(path.join(bundle, 'evidence.json'), 'utf8')) as Evidence;
  const web = evidence.services.find((item) => item.service === 'web');
  assert.ok(web, JSON.stringify(evidence));
  assert.equal(web.status, 'running');
  assert.equal(web.oomKilled, false);
  assert.equal(typeof web.restartCount, 'number');
  assert.notEqual(web.health, 'healthy');
  assert.match(web.healthcheck ?? '', /^wget -q -O \/dev\/null http:\/\/127\.0\.0\.1:\d+\/missing\.txt$/);
  assert.ok(web.healthLog.length > 0);
  assert.ok(web.healthLog.every((entry) => entry.exitCode !== 0));
  assert.match(web.healthLog.at(-1)!.output, /404/);
  // The release of C (its image) is what ran, not the previous version started by the rollback.
  assert.ok(evidence.services.some((item) => item.service === 'worker' && item.status === 'running'));
  assert.ok(existsSync(path.join(bundle, 'logs', 'web.log')));
  assert.ok(existsSync(path.join(bundle, 'logs', 'worker.log')));
  const diagnosis = result.diagnosis as { cause: string; recommendations: string[] };
  assert.match(
    diagnosis.cause,
    /web: HEALTHCHECK `wget -q -O \/dev\/null http:\/\/127\.0\.0\.1:\d+\/missing\.txt` failed (once|\d+ times): .*404/,
  );
  assert.match(diagnosis.recommendations[0]!, /^web: HEALTHCHECK/);
  assert.ok(!diagnosis.recommendations.some((line) => /worker|init/.test(line)), diagnosis.recommendations.join('\n'));
  assert.ok(diagnosis.recommendations.some((line) => line.includes(`\`${evidence.compose} ps\``)));
  const installed = spawnSync('docker', ['compose', 'version']).status === 0 ? 'docker compose' : 'docker-compose';
  assert.equal(evidence.compose, installed);
}

describe('end-to-end upgrades against a real Docker engine (issue 6)', { skip, concurrency: false }, () => {
  test('1-3: fresh install → A (full), A → B by patch, B → C full with data/ untouched', async () => {
    const { home: homeDir } = await home('happy', channels.a!);
    const first = await upgrade(homeDir);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.json().status, 'success');
    assert.equal(first.json().strategy, 'full');
    assert.equal(await page(), 'A');

    writeFileSync(path.join(homeDir, 'docker', 'data', 'db.txt'), 'rows of A\n');
    const beforeB = await snapshot(path.join(homeDir, 'docker'));
    setChannel(homeDir, channels.b!);
    const second = await upgrade(homeDir);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    const resultB = second.json();
    assert.equal(resultB.status, 'success');
    assert.equal(resultB.strategy, 'patch');
    assert.ok(typeof resultB.downtime_ms === 'number');
    assert.deepEqual(resultB.executed_scripts, ['up-1.0.0.1.sh']);
    assert.equal(await page(), 'B');
    const afterB = await snapshot(path.join(homeDir, 'docker'));
    const changed = Object.keys({ ...beforeB, ...afterB })
      .filter((key) => beforeB[key] !== afterB[key])
      .sort();
    // Only what differs between A and B (its .env and compose file carry the version); app/keep.txt and images/ untouched.
    assert.deepEqual(
      changed.filter((key) => !key.startsWith('data')),
      [
        '.env',
        'app/config.ini',
        'app/new.txt',
        'docker-compose.yml',
        'migrations',
        'migrations/down-1.0.0.1.sh',
        'migrations/up-1.0.0.1.sh',
        'web/index.html',
      ],
    );
    console.log(`# A → B patch downtime ${resultB.downtime_ms} ms`);

    const dataBefore = await snapshot(path.join(homeDir, 'docker', 'data'));
    setChannel(homeDir, channels.c!);
    const third = await upgrade(homeDir);
    assert.equal(third.code, 0, third.stdout + third.stderr);
    assert.equal(third.json().strategy, 'full');
    assert.equal(await page(), 'C');
    const dataAfter = await snapshot(path.join(homeDir, 'docker', 'data'));
    assert.equal(dataAfter['db.txt'], dataBefore['db.txt']);
    assert.ok(
      !existsSync(path.join(homeDir, 'docker', 'app', 'new.txt')),
      'a full package removes what C does not ship',
    );
    console.log(`# B → C full downtime ${third.json().downtime_ms} ms`);
    const status = await runCli(['--home', homeDir, '--json', 'status']);
    assert.equal(status.json().version, '1.1.0');
  });

  test('2b: a patch restarts the containers whose image and config it leaves alone (same container), and removes the container of a service it drops', async () => {
    const { home: homeDir, project } = await home('keep', channels.a!);
    assert.equal((await upgrade(homeDir)).code, 0);
    const before = containersByService(project);
    assert.deepEqual(Object.keys(before).sort(), ['init', 'web', 'worker']);
    setChannel(homeDir, channels.b!);
    const patched = await upgrade(homeDir);
    assert.equal(patched.code, 0, patched.stdout + patched.stderr);
    assert.equal(patched.json().strategy, 'patch');
    assert.equal(await page(), 'B');
    const after = containersByService(project);
    for (const service of ['web', 'worker']) {
      assert.equal(after[service]?.id, before[service]!.id, `${service}: started again, not recreated`);
      assert.notEqual(after[service]?.startedAt, before[service]!.startedAt, `${service} was restarted`);
    }
    // B's init command names its version: compose recreates the one service whose config changed.
    assert.notEqual(after.init?.id, before.init!.id);

    setChannel(homeDir, channels.withoutWorker!);
    const dropped = await upgrade(homeDir);
    assert.equal(dropped.code, 0, dropped.stdout + dropped.stderr);
    assert.equal(dropped.json().strategy, 'patch');
    assert.equal(dropped.json().version, '1.0.0.2');
    const left = containersByService(project);
    assert.deepEqual(Object.keys(left).sort(), ['init', 'web'], 'the dropped worker has no container, running or not');
    assert.equal(left.web?.id, before.web!.id);
    assert.equal(await page(), 'B');
  });

  for (const [name, channelName, code, step] of [
    ['4: migration up fails → down scripts in reverse, restored, exit 4', 'migrationFails', 4, 'migrating'],
    ['5: compose up fails → rolled back, exit 4', 'upFails', 4, 'starting'],
    ['6: critical service unhealthy → rolled back, exit 4', 'critical', 4, 'health_check'],
  ] as const) {
    test(name, async () => {
      const homeDir = await installA(channelName);
      const before = await deployment(homeDir);
      setChannel(homeDir, channels[channelName]!);
      const run = await upgrade(homeDir);
      assert.equal(run.code, code, run.stdout + run.stderr);
      const result = run.json();
      assert.equal(result.status, 'failed');
      assert.equal(result.step, step);
      assert.equal(result.recovered, true);
      assert.equal(result.outcome, 'rolled_back');
      assert.equal(result.previous_version, '1.0.0');
      const after = await deployment(homeDir);
      if (channelName === 'migrationFails') {
        // SPEC 8: the down scripts of the up scripts that completed; the failed up-1.1.0's own does not run.
        assert.equal(readFileSync(path.join(homeDir, 'trace.log'), 'utf8'), 'up-1.0.5\nup-1.1.0\ndown-1.0.5\n');
        const bundle = path.join(homeDir, 'logs', 'failures', String(result.upgrade_id));
        const plan = JSON.parse(readFileSync(path.join(bundle, 'plan.json'), 'utf8')) as { executedScripts: string[] };
        assert.deepEqual(plan.executedScripts, ['up-1.0.5.sh']);
        // The failed script's output is kept in the bundle.
        assert.match(readFileSync(path.join(bundle, 'events.json'), 'utf8'), /up-1\.1\.0\.sh/);
      }
      if (channelName === 'critical') assertHealthEvidence(homeDir, result);
      assert.deepEqual(after, before);
      assert.equal(await page(), 'A');
      assert.ok(existsSync(path.join(homeDir, 'logs', 'failures', String(result.upgrade_id), 'result.json')));
    });
  }

  test('7: only the non-critical service unhealthy → partial_success, exit 3', async () => {
    const homeDir = await installA('noncritical');
    setChannel(homeDir, channels.noncritical!);
    const run = await upgrade(homeDir);
    assert.equal(run.code, 3, run.stdout + run.stderr);
    assert.equal(run.json().status, 'partial_success');
    assert.deepEqual(run.json().unhealthy_services, ['worker']);
    assert.equal(await page(), 'C');
  });

  test('8: backup.sh fails → failed, changed: false, exit 1, the services never stopped', async () => {
    const homeDir = await installA('backuphook');
    const project = projects.at(-1)!;
    writeFileSync(
      path.join(homeDir, 'docker', 'backup.sh'),
      '#!/bin/sh\necho \'{"success": false, "error": "database dump failed"}\'\nexit 1\n',
      { mode: 0o755 },
    );
    const before = await deployment(homeDir);
    const running = containers(project);
    assert.ok(running.length > 0);
    setChannel(homeDir, channels.c!);
    const run = await upgrade(homeDir);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.equal(run.json().status, 'failed');
    assert.equal(run.json().changed, false);
    assert.equal(run.json().outcome, 'failed');
    assert.equal(run.json().step, 'backing_up');
    assert.match(JSON.stringify(run.json().error), /database dump failed/);
    assert.deepEqual(await deployment(homeDir), before);
    assert.deepEqual(containers(project), running, 'the same containers, never restarted');
    assert.equal(await page(), 'A');
    const history = await runCli(['--home', homeDir, 'history']);
    assert.match(history.stdout, /1\.0\.0 → 1\.1\.0 full failed at backing_up/);
  });

  test('8c: config.toml read-only (chattr +i) → refused before the switch, E_CONFIG_READONLY, nothing changed, exit 1', async (t) => {
    const homeDir = await installA('readonlyconfig');
    const project = projects.at(-1)!;
    setChannel(homeDir, channels.c!);
    const config = path.join(homeDir, 'config.toml');
    const configBefore = readFileSync(config, 'utf8');
    const before = await deployment(homeDir);
    const running = containers(project);
    assert.ok(running.length > 0);
    if (!makeImmutable(config)) return t.skip('chattr +i is not supported on this filesystem');
    let run: Awaited<ReturnType<typeof upgrade>>;
    try {
      run = await upgrade(homeDir);
    } finally {
      makeMutable(config);
    }
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.equal(run.json().status, 'failed');
    assert.equal(run.json().changed, false);
    assert.match(JSON.stringify(run.json().error), /"code":"E_CONFIG_READONLY"/);
    assert.deepEqual(await deployment(homeDir), before);
    assert.deepEqual(containers(project), running, 'the same containers, never restarted');
    assert.equal(readFileSync(config, 'utf8'), configBefore);
    assert.equal(await page(), 'A');
    const status = await runCli(['--home', homeDir, '--json', 'status']);
    assert.equal(status.json().version, '1.0.0');
  });

  test('8b: restore.sh fails after nuwax restored its backup → recovered: false (exit 5), saying exactly that', async () => {
    const homeDir = await installA('restorehook');
    writeFileSync(path.join(homeDir, 'docker', 'backup.sh'), '#!/bin/sh\necho \'{"file": "dump-7.sql"}\'\n', {
      mode: 0o755,
    });
    writeFileSync(
      path.join(homeDir, 'docker', 'restore.sh'),
      '#!/bin/sh\necho \'{"success": false, "error": "dump-7.sql not found"}\'\nexit 1\n',
      { mode: 0o755 },
    );
    setChannel(homeDir, channels.critical!);
    const run = await upgrade(homeDir);
    assert.equal(run.code, 5, run.stdout + run.stderr);
    const result = run.json() as Record<string, unknown> & { diagnosis: { cause: string; recommendations: string[] } };
    assert.equal(result.recovered, false);
    assert.equal(result.outcome, 'failed_unrecovered');
    assert.match(result.diagnosis.cause, /restored nuwax's backup #\d+/);
    assert.match(result.diagnosis.cause, /previous version 1\.0\.0 runs healthy/);
    assert.match(result.diagnosis.cause, /dump-7\.sql not found/);
    assert.doesNotMatch(JSON.stringify(result), /did NOT complete|Restore the pre-upgrade backup by hand/);
    assert.deepEqual(result.manual_steps, [
      `Run docker/restore.sh again: cd ${path.join(homeDir, 'docker')} && ./restore.sh --file=dump-7.sql --format=json`,
    ]);
    assert.equal(await page(), 'A');
  });

  test('9: kill -9 of nuwax at each step, then nuwax status → A or C, healthy, never mixed, data intact', async () => {
    const homeDir = await installA('kill9');
    const snapshotA = await snapshot(path.join(homeDir, 'docker'));
    setChannel(homeDir, channels.c!);
    const steps = [
      'downloading',
      'staging',
      'loading_images',
      'backing_up',
      'stopping',
      'applying',
      'migrating',
      'starting',
      'health_check',
      'committing',
    ];
    for (const step of steps) {
      const child = spawn(process.execPath, [CLI_PATH, '--home', homeDir, '--json', 'upgrade', '--yes'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let buffer = '';
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: Buffer) => {
          buffer += chunk.toString();
          if (buffer.includes(`"step":"${step}","status":"running"`)) {
            child.kill('SIGKILL');
          }
        });
        child.on('exit', () => resolve());
      });
      const status = await runCli(['--home', homeDir, '--json', 'status'], { timeoutMs: 300_000 });
      assert.equal(status.code, 0, status.stderr);
      const version = status.json().version;
      const tree = await snapshot(path.join(homeDir, 'docker'));
      const web = await page();
      console.log(`# killed at ${step}: now on ${version}, web serves ${web}`);
      assert.ok(version === '1.0.0' || version === '1.1.0', `${step}: version ${version}`);
      assert.equal(
        readFileSync(path.join(homeDir, 'docker', 'data', 'db.txt'), 'utf8'),
        'rows of A\n',
        `${step}: data intact`,
      );
      if (version === '1.0.0') {
        const comparable = { ...tree };
        delete comparable['data/migrations.log'];
        delete comparable['data/init.log'];
        const expected = { ...snapshotA };
        delete expected['data/migrations.log'];
        delete expected['data/init.log'];
        assert.deepEqual(comparable, expected, `${step}: files equal A's`);
        assert.equal(web, 'A', `${step}: A serves`);
      } else {
        assert.equal(web, 'C', `${step}: C serves`);
        return; // on C: the remaining steps cannot be interrupted any more
      }
    }
  });
});
