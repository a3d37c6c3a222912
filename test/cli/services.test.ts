import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { generateKeyPair, loadPrivateKey, signBytes } from '../../src/manifest/index.js';
import { DockerRuntime } from '../../src/runtime/index.js';
import { type CliRun, runCli, withTempDir } from '../helpers/cli.js';
import {
  buildBusyboxImage,
  docker,
  dockerSuite,
  freePort,
  httpService,
  loopService,
  removeImages,
  removeProject,
  uniqueName,
  writeComposeProject,
} from '../helpers/docker.js';
import { ReleaseServer } from '../helpers/release-server.js';

const keys = generateKeyPair();
const server = new ReleaseServer();
const image = uniqueName('nuwax-services');
const suite = await dockerSuite();

interface Service {
  service: string;
  state: string;
  critical: boolean;
  down: boolean;
  exit_code: number | null;
}

before(async () => {
  await server.start();
  const manifest = Buffer.from(
    JSON.stringify({
      version: '1.4.0.2',
      release_date: '2026-11-20T10:00:00Z',
      platforms: { x86_64: { url: 'full.tar.gz', hash: `sha256:${'c'.repeat(64)}`, size: 4096 } },
    }),
  );
  server.set('/manifest.json', manifest);
  server.set('/manifest.json.sig', signBytes(manifest, loadPrivateKey(keys.privateKeyPem)));
  if (!suite.skip) await buildBusyboxImage(image);
});
after(async () => {
  await server.stop();
  if (!suite.skip) await removeImages([image]);
});

/** An installed box: web (critical, HEALTHCHECK) and worker (not critical), started and healthy. */
async function startedBox(home: string): Promise<{ project: string; container: (service: string) => Promise<string> }> {
  const project = uniqueName('services');
  await writeFile(
    path.join(home, 'config.toml'),
    `[versions]\ndocker_service = "1.4.0.1"\n\n[docker]\nproject_name = "${project}"\n\n` +
      `[server]\nmanifest_url = "${server.url}/manifest.json"\n\n[security]\npublic_keys = ["${keys.publicKey}"]\n\n` +
      '[health]\ncritical = ["web"]\n',
  );
  const dockerDir = path.join(home, 'docker');
  await mkdir(dockerDir, { recursive: true });
  const composeFile = await writeComposeProject(dockerDir, {
    web: httpService(image, await freePort()),
    worker: loopService(image),
  });
  await new DockerRuntime({ dockerDir, composeFile, projectName: project }).up({ timeoutMs: 60_000 });
  const container = async (service: string) =>
    docker([
      'ps',
      '-aq',
      '--filter',
      `label=com.docker.compose.project=${project}`,
      '--filter',
      `label=com.docker.compose.service=${service}`,
    ]);
  const deadline = Date.now() + 30_000;
  while ((await docker(['inspect', '--format', '{{.State.Health.Status}}', await container('web')])) !== 'healthy') {
    assert.ok(Date.now() < deadline, 'web never became healthy');
    await sleep(250);
  }
  return { project, container };
}

const servicesOf = (run: CliRun) => run.json().services as Service[];
const lineOf = (run: CliRun, title: string) =>
  run.stdout.split('\n').find((line) => new RegExp(`^(ok|warn|FAIL)\\s+${title}\\s{2,}`).test(line)) ?? '';

describe('a down application is seen by status and doctor (real Docker)', { ...suite, concurrency: false }, () => {
  test('docker stop of the critical web container: doctor NOT_READY (exit 1), status shows web exited', () =>
    withTempDir('services', async (home) => {
      const { project, container } = await startedBox(home);
      try {
        const up = await runCli(['status', '--home', home, '--json']);
        assert.equal(up.code, 0, up.stderr);
        assert.deepEqual(
          servicesOf(up).map((item) => [item.service, item.state, item.critical, item.down]),
          [
            ['web', 'healthy', true, false],
            ['worker', 'running', false, false],
          ],
        );
        const ready = await runCli(['doctor', '--home', home]);
        assert.equal(ready.code, 0, ready.stdout + ready.stderr);
        assert.equal(ready.stdout.trim().split('\n').at(-1), 'READY', ready.stdout);
        assert.match(lineOf(ready, 'Services'), /^ok +Services +2 services up: web healthy, worker running/);

        await docker(['stop', await container('web')]);
        const doctor = await runCli(['doctor', '--home', home]);
        assert.equal(doctor.code, 1, doctor.stdout + doctor.stderr);
        assert.equal(doctor.stdout.trim().split('\n').at(-1), 'NOT_READY');
        assert.match(lineOf(doctor, 'Services'), /^FAIL +Services +critical service down: web exited \(code \d+\) → /);
        const status = await runCli(['status', '--home', home]);
        assert.equal(status.code, 0, status.stderr);
        assert.match(status.stdout, /^services: web exited \(code \d+\) \(critical: DOWN\)$/m);
        assert.match(status.stdout, /^ {10}worker running$/m);
        const json = await runCli(['--json', 'status', '--home', home]);
        const web = servicesOf(json).find((item) => item.service === 'web')!;
        assert.deepEqual([web.state, web.down, typeof web.exit_code], ['exited', true, 'number']);
      } finally {
        await removeProject(project);
      }
    }));

  test('a stopped non-critical service: doctor READY_WITH_WARNINGS (exit 0), status marks it down', () =>
    withTempDir('services', async (home) => {
      const { project, container } = await startedBox(home);
      try {
        await docker(['stop', await container('worker')]);
        const doctor = await runCli(['doctor', '--home', home]);
        assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
        assert.equal(doctor.stdout.trim().split('\n').at(-1), 'READY_WITH_WARNINGS', doctor.stdout);
        assert.match(lineOf(doctor, 'Services'), /^warn +Services +non-critical service down: worker exited/);
        const status = await runCli(['status', '--home', home]);
        assert.match(status.stdout, /^ {10}worker exited \(code \d+\) \(non-critical: down\)$/m);
      } finally {
        await removeProject(project);
      }
    }));
});

describe('without Docker', () => {
  test('status says it cannot see the services, and still shows what the store knows (exit 0)', () =>
    withTempDir('services', async (home) => {
      await writeFile(path.join(home, 'config.toml'), '[versions]\ndocker_service = "1.4.0.1"\n');
      const env = { PATH: path.join(home, 'no-docker-here') };
      const run = await runCli(['status', '--home', home], { env });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^version: {2}1\.4\.0\.1$/m);
      assert.match(run.stdout, /^services: cannot see them: Cannot run docker \(not installed or not on PATH\)/m);
      assert.equal(run.stderr, '');
      const json = (await runCli(['status', '--home', home, '--json'], { env })).json();
      assert.equal(json.services, null);
      assert.match(String(json.services_error), /Cannot run docker/);
    }));
});
