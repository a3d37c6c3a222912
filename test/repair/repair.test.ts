import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI_PATH, runCli, withTempDir } from '../helpers/cli.js';
import {
  buildBusyboxImage,
  docker,
  dockerSuite,
  freePort,
  httpService,
  projectContainers,
  removeImages,
  removeProject,
  uniqueName,
} from '../helpers/docker.js';
import { ReleaseServer } from '../helpers/release-server.js';
import { type Box, boxState, doctorVerdict, makeBox, publishManifest, repair, storeRows } from './box.js';

const server = new ReleaseServer();
const image = uniqueName('nuwax-repair');
const projects: string[] = [];
let manifestUrl = '';

before(async () => {
  await server.start();
  manifestUrl = publishManifest(server);
  await buildBusyboxImage(image);
});
after(async () => {
  for (const project of projects) await removeProject(project);
  await removeImages([image]);
  await server.stop();
});

/** busybox httpd on host networking, as the demo's application runs. */
async function hostCompose(): Promise<string> {
  const web = httpService(image, await freePort());
  return `version: "2.4"\nservices:\n  web:\n    image: ${image}\n    network_mode: host\n    init: true\n    restart: "no"\n    command: ${JSON.stringify(['sh', '-c', web.command])}\n    healthcheck: ${JSON.stringify({ test: web.healthcheck!.test, interval: '1s', timeout: '2s', retries: 2 })}\n`;
}

/** The same service on a compose network of its own (the network repair's case). */
function bridgeCompose(): string {
  const command = 'echo ok > /www/index.html && exec httpd -f -p 80 -h /www';
  const check = { test: ['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:80/index.html'], interval: '1s' };
  return `version: "2.4"\nservices:\n  web:\n    image: ${image}\n    init: true\n    command: ${JSON.stringify(['sh', '-c', command])}\n    healthcheck: ${JSON.stringify(check)}\n    networks: ["backend"]\nnetworks:\n  backend: {}\n`;
}

async function box(home: string, compose: string, up = true): Promise<Box> {
  const made = await makeBox(home, compose, manifestUrl, up);
  projects.push(made.project);
  return made;
}

async function stopWeb(made: Box): Promise<void> {
  const [web] = await projectContainers(made.project);
  await docker(['stop', '-t', '1', web!.id]);
}

function repairs(result: Record<string, unknown>) {
  return result.repairs as Array<{
    kind: string;
    findings: string[];
    actions: Array<{ action: { type: string }; description: string; status: string }>;
  }>;
}

describe('nuwax repair with the real Docker engine', { ...(await dockerSuite()), concurrency: 2 }, () => {
  test('failed-startup brings a stopped critical service back; doctor READY after; recorded in history', () =>
    withTempDir('repair', async (home) => {
      const made = await box(home, await hostCompose());
      await stopWeb(made);
      const run = await repair(home, 'failed-startup', '--yes');
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const result = run.json();
      assert.equal(result.status, 'repaired');
      assert.equal(result.verdict, 'READY', run.stdout);
      const [startup] = repairs(result);
      assert.match(startup!.findings.join('\n'), /critical service web is down \(exited\)/);
      assert.deepEqual(
        startup!.actions.map((item) => `${item.action.type} ${item.status}`),
        ['stop done', 'start done', 'wait_health done'],
      );
      const [web] = await projectContainers(made.project);
      assert.equal(web!.running, true);
      assert.equal(await doctorVerdict(home), 'READY');
      const history = (await runCli(['--home', home, '--json', 'history'])).json() as unknown as Array<
        Record<string, unknown>
      >;
      assert.equal(history[0]!.trigger, 'repair');
      assert.equal(history[0]!.status, 'success');
      assert.equal(history[0]!.id, result.history_id);
    }));

  test('failed-startup --dry-run says what it would do and changes nothing: tree, rows, containers', () =>
    withTempDir('repair', async (home) => {
      const made = await box(home, await hostCompose());
      await stopWeb(made);
      const before = await boxState(made);
      const run = await repair(home, 'failed-startup', '--dry-run');
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const result = run.json();
      assert.equal(result.status, 'planned');
      assert.deepEqual(
        repairs(result)[0]!.actions.map((item) => item.status),
        ['planned', 'planned', 'planned'],
      );
      assert.deepEqual(await boxState(made), before);
      assert.equal(storeRows(home).upgrades!.length, 0);
    }));

  test('network recreates a removed compose network and starts the application', () =>
    withTempDir('repair', async (home) => {
      const made = await box(home, bridgeCompose());
      await stopWeb(made);
      await docker(['network', 'rm', `${made.project}_backend`]);
      const dry = await boxState(made);
      const planned = await repair(home, 'network', '--dry-run');
      assert.equal(planned.json().status, 'planned', planned.stdout);
      assert.deepEqual(await boxState(made), dry);
      const run = await repair(home, 'network', '--yes');
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const [network] = repairs(run.json());
      assert.match(network!.findings.join('\n'), new RegExp(`web is attached to the network ${made.project}_backend`));
      assert.equal(
        await docker(['network', 'inspect', '-f', '{{.Name}}', `${made.project}_backend`]),
        `${made.project}_backend`,
      );
      const [web] = await projectContainers(made.project);
      assert.equal(web!.running, true);
      assert.equal(run.json().verdict, 'READY', run.stdout);
    }));

  test('volumes creates a missing bind-mount source with the owner of the service user; data/ content untouched', () =>
    withTempDir('repair', async (home) => {
      const compose = `version: "2.4"\nservices:\n  web:\n    image: ${image}\n    network_mode: host\n    user: "1234:2345"\n    command: ["sleep", "1"]\n    volumes: ["./data/web:/data", "./cache/web:/cache"]\n`;
      const made = await box(home, compose, false);
      const before = await boxState(made);
      const planned = await repair(home, 'volumes', '--dry-run');
      assert.equal(planned.code, 0, planned.stdout + planned.stderr);
      assert.equal(repairs(planned.json())[0]!.actions.length, 2);
      assert.deepEqual(await boxState(made), before);
      const run = await repair(home, 'volumes', '--yes');
      assert.equal(run.code, 0, run.stdout + run.stderr);
      for (const folder of ['data/web', 'cache/web']) {
        const info = await stat(path.join(home, 'docker', folder));
        assert.equal(info.isDirectory(), true);
        assert.deepEqual([info.uid, info.gid, info.mode & 0o777], [1234, 2345, 0o755], folder);
      }
      const after = (await boxState(made)) as { tree: Record<string, string> };
      assert.equal(
        after.tree['docker/data/app.db'],
        (before as { tree: Record<string, string> }).tree['docker/data/app.db'],
      );
    }));
});

describe('the daemon watch with the real Docker engine', await dockerSuite(), () => {
  test('[health] watch + auto_repair: the daemon brings a stopped critical service back and records it', () =>
    withTempDir('repair', async (home) => {
      const made = await box(home, await hostCompose());
      const config = path.join(home, 'config.toml');
      const text = await readFile(config, 'utf8');
      await writeFile(
        config,
        `${text.replace('[health]\n', '[health]\nwatch = "1s"\nauto_repair = true\n')}\n[schedule]\ncheck = "0 0 1 1 *"\n`,
      );
      const daemon = spawn(process.execPath, [CLI_PATH, '--home', home, 'daemon'], { stdio: 'ignore' });
      try {
        await sleep(1500);
        await stopWeb(made);
        let running = false;
        for (let waited = 0; waited < 60_000 && !running; waited += 500) {
          await sleep(500);
          const [web] = await projectContainers(made.project);
          running = web?.running === true && storeRows(home).upgrades!.length > 0;
        }
        assert.equal(running, true, 'the watch did not bring web back');
      } finally {
        daemon.kill('SIGTERM');
        await new Promise((resolve) => daemon.once('exit', resolve));
      }
      const [row] = storeRows(home).upgrades as Array<{ trigger: string; started_by: string; status: string }>;
      assert.equal(row!.trigger, 'repair');
      assert.match(row!.started_by, /auto-repair/);
      assert.equal(row!.status, 'success');
    }));
});

describe('nuwax repair permissions', () => {
  test('gives backups/ back its 0700 and a backup its 0600; --dry-run first changes nothing', () =>
    withTempDir('repair', async (home) => {
      const made = await makeBox(home, 'version: "2.4"\nservices: {}\n', 'http://127.0.0.1:9/manifest.json', false);
      await mkdir(path.join(home, 'backups'), { recursive: true });
      await rm(path.join(home, 'cache'), { recursive: true, force: true });
      await writeFile(path.join(home, 'backups', 'backup-1.tar.gz'), 'x');
      await chmod(path.join(home, 'backups'), 0o755);
      await chmod(path.join(home, 'backups', 'backup-1.tar.gz'), 0o644);
      const before = await boxState(made);
      const planned = await runCli(['--home', home, '--json', 'repair', 'permissions', '--dry-run'], {
        env: { PATH: path.join(home, 'no-docker-here') },
      });
      assert.equal(planned.code, 0, planned.stdout + planned.stderr);
      assert.deepEqual(await boxState(made), before);
      const run = await runCli(['--home', home, '--json', 'repair', 'permissions', '--yes'], {
        env: { PATH: path.join(home, 'no-docker-here') },
      });
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.equal((await stat(path.join(home, 'backups'))).mode & 0o777, 0o700);
      assert.equal((await stat(path.join(home, 'backups', 'backup-1.tar.gz'))).mode & 0o777, 0o600);
      assert.equal((await stat(path.join(home, 'cache'))).isDirectory(), true);
    }));
});
