import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateKeyPair, loadPrivateKey, signBytes } from '../../src/manifest/index.js';
import { DockerRuntime } from '../../src/runtime/index.js';
import { openStore, storePathFor } from '../../src/state/index.js';
import { type CliRun, runCli, withTempDir } from '../helpers/cli.js';
import {
  buildBusyboxImage,
  dockerSuite,
  freePort,
  removeImages,
  removeProject,
  uniqueName,
} from '../helpers/docker.js';
import { ReleaseServer } from '../helpers/release-server.js';

const HASH = 'c'.repeat(64);
const keys = generateKeyPair();
const IDS = ['docker', 'compose', 'compose_file', 'disk', 'home', 'server', 'manifest', 'clock', 'ports', 'services'];

function manifestJson(version = '1.4.0.2'): string {
  return JSON.stringify({
    version,
    release_date: '2026-11-20T10:00:00Z',
    platforms: {
      x86_64: { url: 'full-x86_64.tar.gz', hash: `sha256:${HASH}`, size: 4096 },
      aarch64: { url: 'full-aarch64.tar.gz', hash: `sha256:${HASH}`, size: 4096 },
    },
  });
}

interface Box {
  manifestUrl: string;
  publicKey?: string;
  /** The compose file's text; by default one service publishing `port` and one on host networking. */
  compose?: string;
  port?: number;
}

/** A home as an installed box has it: config.toml naming its own compose project, and docker/. */
async function makeBox(home: string, box: Box): Promise<string> {
  const project = uniqueName('doctor');
  const security = box.publicKey ? `\n[security]\npublic_keys = ["${box.publicKey}"]\n` : '';
  await writeFile(
    path.join(home, 'config.toml'),
    `[versions]\ndocker_service = "1.4.0.1"\n\n[docker]\nproject_name = "${project}"\n\n[server]\nmanifest_url = "${box.manifestUrl}"\ntimeout = 5\n${security}`,
  );
  await mkdir(path.join(home, 'docker'), { recursive: true });
  const compose =
    box.compose ??
    `version: "2.4"\nservices:\n  web:\n    image: busybox\n    ports: ["${box.port ?? (await freePort())}:80"]\n  agent:\n    image: busybox\n    network_mode: host\n`;
  await writeFile(path.join(home, 'docker', 'docker-compose.yml'), compose);
  return project;
}

const doctor = (home: string, ...global: string[]) => runCli(['--home', home, ...global, 'doctor']);

/**
 * The release-server checks need no Docker: these runs hide docker and compose from PATH, which is
 * also a box where Docker is not installed (and saves two compose v1 runs of a second each).
 */
const doctorWithoutDocker = (home: string, ...global: string[]) =>
  runCli(['--home', home, ...global, 'doctor'], { env: { PATH: path.join(home, 'no-docker-here') } });

/** The human line of one check: `<status>  <title> <message>[ → hint]`. */
function lineOf(run: CliRun, title: string): string {
  const found = run.stdout.split('\n').filter((item) => new RegExp(`^(ok|warn|FAIL)\\s+${title}\\s{2,}`).test(item));
  assert.equal(found.length, 1, `one line for ${title} in:\n${run.stdout}`);
  return found[0]!;
}

function verdictOf(run: CliRun): string {
  return run.stdout.trim().split('\n').at(-1)!;
}

const NO_STACK = /\bat .*\.js:\d+|^\s+at /m;

const server = new ReleaseServer();
before(async () => {
  await server.start();
  const signed = Buffer.from(manifestJson());
  server.set('/signed.json', signed);
  server.set('/signed.json.sig', signBytes(signed, loadPrivateKey(keys.privateKeyPem)));
  server.set('/tampered.json', manifestJson('1.4.0.3'));
  server.set('/tampered.json.sig', signBytes(signed, loadPrivateKey(keys.privateKeyPem)));
});
after(() => server.stop());

// Each run spends most of its time waiting on docker and compose: two at a time halve the file's time.
describe('nuwax doctor on a box with Docker', { ...(await dockerSuite()), concurrency: 2 }, () => {
  test('READY on a prepared box: Docker, compose, a valid compose file, a signed manifest, free ports (exit 0)', () =>
    withTempDir('doctor', async (home) => {
      await makeBox(home, { manifestUrl: `${server.url}/signed.json`, publicKey: keys.publicKey });
      const run = await doctor(home);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.equal(verdictOf(run), 'READY', run.stdout);
      for (const title of ['Docker', 'Compose', 'Compose file', 'Disk', 'Home', 'Server', 'Manifest', 'Clock', 'Ports'])
        assert.match(lineOf(run, title), /^ok /);
      assert.match(lineOf(run, 'Compose'), /docker(-| )compose \d+\.\d+\.\d+ \((v1|v2 plugin)\)/);
      assert.match(
        lineOf(run, 'Manifest'),
        /manifest 1\.4\.0\.2 valid; installed 1\.4\.0\.1, next: full \(4\.0 KiB\); signature verified/,
      );
      assert.match(lineOf(run, 'Clock'), /within \d+ s of the release server/);
      assert.match(lineOf(run, 'Ports'), /1 published port: 1 free; host networking for agent/);
      assert.equal(run.stderr, '');
    }));

  test('READY_WITH_WARNINGS when no public key is configured: the manifest line warns, exit 0', () =>
    withTempDir('doctor', async (home) => {
      await makeBox(home, { manifestUrl: `${server.url}/signed.json` });
      const run = await doctor(home);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.equal(verdictOf(run), 'READY_WITH_WARNINGS', run.stdout);
      assert.match(
        lineOf(run, 'Manifest'),
        /^warn .*NOT authenticated: no \[security\] public_keys configured → add the release public key/,
      );
      assert.equal(run.stdout.split('\n').filter((item) => /^(warn|FAIL) /.test(item)).length, 1, run.stdout);
    }));

  test('NOT_READY with an invalid compose file: compose says why, ports are not checked, exit 1', () =>
    withTempDir('doctor', async (home) => {
      await makeBox(home, {
        manifestUrl: `${server.url}/signed.json`,
        publicKey: keys.publicKey,
        compose: 'version: "2.4"\nservices:\n  web:\n    image: busybox\n    ports: "8080:80"\n',
      });
      const run = await doctor(home);
      assert.equal(run.code, 1);
      assert.equal(verdictOf(run), 'NOT_READY');
      assert.match(lineOf(run, 'Compose file'), /^FAIL .*is not a valid compose file: .*→ fix the file/);
      assert.match(lineOf(run, 'Ports'), /^warn .*not checked: the compose file is not valid/);
      assert.match(lineOf(run, 'Docker'), /^ok /);
    }));

  test('a port held by another process fails the ports check, naming the port (exit 1)', () =>
    withTempDir('doctor', async (home) => {
      const port = await freePort();
      const holder: Server = createServer();
      await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
      try {
        await makeBox(home, { manifestUrl: `${server.url}/signed.json`, publicKey: keys.publicKey, port });
        const run = await doctor(home);
        assert.equal(run.code, 1, run.stdout);
        assert.equal(verdictOf(run), 'NOT_READY');
        assert.match(
          lineOf(run, 'Ports'),
          new RegExp(`^FAIL .*held by another process: ${port}/tcp \\(web\\) → stop what holds the port`),
        );
      } finally {
        await new Promise((resolve) => holder.close(resolve));
      }
    }));

  test('a port held by our own running service is fine', () =>
    withTempDir('doctor', async (home) => {
      const port = await freePort();
      const image = uniqueName('nuwax-doctor');
      await buildBusyboxImage(image);
      const compose = `version: "2.4"\nservices:\n  web:\n    image: ${image}\n    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]\n    init: true\n    ports: ["127.0.0.1:${port}:80"]\n`;
      const project = await makeBox(home, {
        manifestUrl: `${server.url}/signed.json`,
        publicKey: keys.publicKey,
        compose,
      });
      try {
        await new DockerRuntime({
          dockerDir: path.join(home, 'docker'),
          composeFile: path.join(home, 'docker', 'docker-compose.yml'),
          projectName: project,
        }).up({ timeoutMs: 60_000 });
        const run = await doctor(home);
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.equal(verdictOf(run), 'READY');
        assert.match(lineOf(run, 'Ports'), /^ok +Ports +1 published port: 0 free, 1 held by our own services/);
      } finally {
        await removeProject(project);
        await removeImages([image]);
      }
    }));
});

describe('nuwax doctor against the release server', { concurrency: 2 }, () => {
  test('NOT_READY when the server is down: one server line, no stack trace, exit 1', () =>
    withTempDir('doctor', async (home) => {
      await makeBox(home, { manifestUrl: 'http://127.0.0.1:9/manifest.json', publicKey: keys.publicKey });
      const run = await doctorWithoutDocker(home);
      assert.equal(run.code, 1);
      assert.equal(verdictOf(run), 'NOT_READY');
      assert.match(
        lineOf(run, 'Server'),
        /^FAIL +Server +Cannot reach the release server at http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\) → check the network/,
      );
      assert.match(lineOf(run, 'Manifest'), /^warn .*not checked: the release server did not answer/);
      assert.match(
        lineOf(run, 'Docker'),
        /^FAIL +Docker +Docker engine not reachable: Cannot run docker \(not installed or not on PATH\).* → start the engine/,
      );
      assert.match(
        lineOf(run, 'Compose'),
        /^FAIL +Compose +Neither `docker compose` \(v2\) nor `docker-compose` \(v1\) is available/,
      );
      assert.match(lineOf(run, 'Compose file'), /^warn .*not checked: compose is not available/);
      assert.match(lineOf(run, 'Ports'), /^ok +Ports +1 published port: 1 free/, 'read from the file as written');
      assert.doesNotMatch(run.stdout + run.stderr, NO_STACK);
      assert.equal(run.stderr, '');
    }));

  test('--json: the verdict and one entry per check with a stable id, a status and a one-line message; a failure has a hint', () =>
    withTempDir('doctor', async (home) => {
      await makeBox(home, { manifestUrl: 'http://127.0.0.1:9/manifest.json' });
      const run = await doctorWithoutDocker(home, '--json');
      assert.equal(run.code, 1);
      assert.equal(run.stdout.trim().split('\n').length, 1, 'one JSON document');
      const report = run.json() as {
        verdict: string;
        checks: Array<{ id: string; title: string; status: string; message: string; hint?: string }>;
      };
      assert.deepEqual(Object.keys(report), ['verdict', 'checks']);
      assert.equal(report.verdict, 'NOT_READY');
      assert.deepEqual(
        report.checks.map((check) => check.id),
        IDS,
      );
      for (const check of report.checks) {
        assert.ok(['ok', 'warn', 'fail'].includes(check.status), check.status);
        assert.equal(typeof check.title, 'string');
        assert.ok(check.message.length > 0 && !check.message.includes('\n'), check.message);
        if (check.status === 'fail') assert.ok(check.hint, `${check.id} has a hint`);
      }
      const serverCheck = report.checks.find((check) => check.id === 'server')!;
      assert.equal(serverCheck.status, 'fail');
      assert.match(serverCheck.message, /ECONNREFUSED/);
    }));

  test('a tampered signature fails the manifest check with E_SIGNATURE (exit 1)', () =>
    withTempDir('doctor', async (home) => {
      await makeBox(home, { manifestUrl: `${server.url}/tampered.json`, publicKey: keys.publicKey });
      const run = await doctorWithoutDocker(home);
      assert.equal(run.code, 1);
      assert.equal(verdictOf(run), 'NOT_READY');
      assert.match(lineOf(run, 'Server'), /^ok /);
      assert.match(
        lineOf(run, 'Manifest'),
        /^FAIL +Manifest +E_SIGNATURE: The manifest signature does not verify .*→ the manifest or its \.sig was changed/,
      );
    }));

  test('a clock an hour ahead of the release server is a warning', () =>
    withTempDir('doctor', async (home) => {
      const body = manifestJson('1.4.0.1');
      const lagging: HttpServer = createHttpServer((_request, response) => {
        response.writeHead(200, {
          date: new Date(Date.now() - 3600_000).toUTCString(),
          'content-type': 'application/json',
        });
        response.end(body);
      });
      await new Promise<void>((resolve) => lagging.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = lagging.address() as { port: number };
        await makeBox(home, { manifestUrl: `http://127.0.0.1:${port}/manifest.json` });
        const run = await doctorWithoutDocker(home);
        assert.match(
          lineOf(run, 'Clock'),
          /^warn +Clock +the clock is 60 min ahead of the release server → .*timedatectl set-ntp true/,
        );
        assert.match(lineOf(run, 'Manifest'), /nothing to install/);
      } finally {
        await new Promise((resolve) => lagging.close(resolve));
      }
    }));

  test('a backups folder that is not a folder fails the home check', () =>
    withTempDir('doctor', async (home) => {
      await makeBox(home, { manifestUrl: `${server.url}/signed.json`, publicKey: keys.publicKey });
      await writeFile(path.join(home, 'backups'), 'not a folder');
      const run = await doctorWithoutDocker(home);
      assert.equal(run.code, 1);
      assert.match(
        lineOf(run, 'Home'),
        new RegExp(`^FAIL +Home +not writable: ${path.join(home, 'backups')} \\(ENOTDIR\\) → give the user`),
      );
    }));

  // Before the fix any error while gathering (here readFile on a folder) ended doctor with one
  // E_INTERNAL line and no checks. A folder works for root too, unlike a 0700 one (EACCES).
  test('a folder where the compose file should be: the compose file check fails naming it (EISDIR), every check still prints, exit 1', () =>
    withTempDir('doctor', async (home) => {
      await makeBox(home, { manifestUrl: `${server.url}/signed.json`, publicKey: keys.publicKey });
      const composeFile = path.join(home, 'docker', 'docker-compose.yml');
      await rm(composeFile);
      await mkdir(composeFile);
      const run = await doctorWithoutDocker(home, '--json');
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const report = run.json() as { verdict: string; checks: Array<{ id: string; status: string; message: string }> };
      assert.equal(report.verdict, 'NOT_READY');
      assert.deepEqual(
        report.checks.map((check) => check.id),
        IDS,
      );
      const check = (id: string) => report.checks.find((item) => item.id === id)!;
      assert.deepEqual(
        [check('compose_file').status, check('compose_file').message],
        ['fail', `${composeFile} cannot be read (EISDIR)`],
      );
      assert.equal(check('ports').status, 'warn');
      assert.equal(check('manifest').status, 'ok', 'the release checks are unaffected');
      assert.doesNotMatch(run.stdout + run.stderr, /E_INTERNAL/);
    }));

  test('no [server] on an air-gapped box: a staged release makes it a warning naming the version; with nothing staged it fails', () =>
    withTempDir('doctor', async (home) => {
      await makeBox(home, { manifestUrl: 'unused' });
      await writeFile(path.join(home, 'config.toml'), '[versions]\ndocker_service = "1.4.0.1"\n');
      const nothingStaged = await doctorWithoutDocker(home);
      assert.match(lineOf(nothingStaged, 'Server'), /^FAIL +Server +No release server configured/);
      // What runUpgrade records after `nuwax import` (src/upgrade/orchestrator.ts).
      const store = openStore(storePathFor(home));
      try {
        store.kv.set('staged', {
          version: '1.4.0.2',
          strategy: 'full',
          from: '1.4.0.1',
          package: path.join(home, 'cache', 'downloads', 'full.tar.gz'),
          sha256: HASH,
          stagedRoot: null,
          manifest: Buffer.from(manifestJson()).toString('base64'),
          manifestUrl: 'bundle:',
          signed: true,
          upgradeId: 1,
        });
      } finally {
        store.close();
      }
      const staged = await doctorWithoutDocker(home);
      assert.match(
        lineOf(staged, 'Server'),
        /^warn +Server +no release server configured: the next upgrade installs the staged release 1\.4\.0\.2 → bring later releases with nuwax import/,
      );
      assert.match(lineOf(staged, 'Manifest'), /^warn .*not checked: no release server configured/);
    }));
});
