import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ErrorCodes, type NuwaxError } from '../../src/errors/index.js';
import { DockerRuntime, type HealthReport, type ServiceHealth } from '../../src/runtime/index.js';
import {
  buildBusyboxImage,
  dockerSuite,
  freePort,
  httpService,
  loopService,
  oneShotService,
  projectContainers,
  removeImages,
  removeProject,
  uniqueName,
  writeComposeProject,
} from '../helpers/docker.js';

function service(report: HealthReport, name: string): ServiceHealth {
  const found = report.services.find((item) => item.service === name);
  assert.ok(found, `${name} is in the report`);
  return found;
}

describe(
  'health: every kind of service classified with the facts a diagnosis needs (SPEC 8)',
  await dockerSuite(),
  () => {
    const image = `${uniqueName('nuwax-health')}:1`;
    const project = uniqueName('nuwaxhealth');
    const failedUpProject = uniqueName('nuwaxupfail');
    let dir: string;
    let runtime: DockerRuntime;
    let webPort: number;
    let sickPort: number;
    let takenPort: number;
    let blocker: net.Server;

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'nuwax-health-'));
      await buildBusyboxImage(image);
      [webPort, sickPort] = [await freePort(), await freePort()];
      // The port the `clash` service wants is held by this test, as another program would hold it.
      blocker = net.createServer();
      takenPort = await freePort();
      await new Promise<void>((resolve) => blocker.listen(takenPort, '127.0.0.1', resolve));
      const composeFile = await writeComposeProject(dir, {
        web: httpService(image, webPort, { page: 'web up' }),
        sick: httpService(image, sickPort, { healthPath: '/missing.html' }),
        crashloop: { image, command: 'echo crashing on purpose; exit 1', restart: 'unless-stopped' },
        giveup: { image, command: 'echo giving up; exit 2', restart: 'on-failure:2' },
        oom: { image, command: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'], memLimit: '8m' },
        clash: { image, command: ['httpd', '-f', '-p', `127.0.0.1:${takenPort}`], restart: 'no' },
        job: oneShotService(image, 0, 'echo migrated'),
        worker: loopService(image),
        slow: {
          image,
          command: 'sleep 600',
          restart: 'no',
          healthcheck: { test: ['CMD', 'false'], interval: '30s', startPeriod: '60s' },
        },
      });
      runtime = new DockerRuntime({
        dockerDir: dir,
        composeFile,
        projectName: project,
        stopTimeoutSeconds: 2,
        commandTimeoutMs: 120_000,
      });
      await runtime.up();
    });

    after(async () => {
      await new Promise((resolve) => blocker.close(resolve));
      await removeProject(project);
      await removeProject(failedUpProject);
      await removeImages([image]);
      await rm(dir, { recursive: true, force: true });
    });

    test('with only healthy services critical the report is healthy; every other service is classified with its facts', async () => {
      const report = await runtime.health({
        critical: ['web', 'job', 'worker'],
        settleMs: 1500,
        timeoutMs: 10_000,
        pollMs: 500,
      });
      assert.equal(report.healthy, true, JSON.stringify(report, null, 1));
      assert.deepEqual(report.criticalFailures, []);
      assert.deepEqual(report.healthyServices.sort(), ['job', 'web', 'worker']);
      assert.deepEqual(report.unhealthyServices.sort(), ['clash', 'crashloop', 'giveup', 'oom', 'sick', 'slow']);

      const web = service(report, 'web');
      assert.deepEqual([web.health, web.critical, web.exitCode, web.logs], ['healthy', true, null, []]);
      assert.equal(service(report, 'worker').health, null);
      assert.match(service(report, 'worker').reason, /without a HEALTHCHECK/);
      assert.deepEqual([service(report, 'job').exitCode, service(report, 'job').reason], [0, 'one-shot, exited 0']);

      const sick = service(report, 'sick');
      assert.deepEqual([sick.health, sick.reason, sick.critical], ['unhealthy', 'HEALTHCHECK unhealthy', false]);

      const crashloop = service(report, 'crashloop');
      assert.equal(crashloop.exitCode, 1);
      assert.ok(crashloop.restartCount >= 3, `restartCount ${crashloop.restartCount}`);
      assert.match(crashloop.reason, /^crash-looping: exited with code 1, restarted \d+ times$/);
      assert.ok(crashloop.logs.includes('crashing on purpose'));
      assert.ok(crashloop.logs.length <= 20);

      const giveup = service(report, 'giveup');
      assert.deepEqual(
        [giveup.state, giveup.exitCode, giveup.restartCount, giveup.reason],
        ['exited', 2, 2, 'exited with code 2, restarted 2 times'],
      );

      const oom = service(report, 'oom');
      // OOMKilled comes from an event docker may see after the exit (it was false once in CI); the
      // reason names the memory limit either way.
      assert.equal(oom.exitCode, 137);
      assert.match(
        oom.reason,
        oom.oomKilled ? /OOMKilled/ : /SIGKILL under a 8 MiB memory limit: likely out of memory/,
      );

      const clash = service(report, 'clash');
      assert.deepEqual([clash.exitCode, clash.portInUse], [1, String(takenPort)]);
      assert.ok(clash.logs.some((line) => /Address already in use/.test(line)));

      const slow = service(report, 'slow');
      assert.equal(slow.health, 'starting');
      assert.match(slow.reason, /^not healthy, check timed out after 10 s: HEALTHCHECK starting$/);
    });

    test('a failing critical service fails the report and stops the check early', async () => {
      const started = Date.now();
      const report = await runtime.health({ settleMs: 1500, timeoutMs: 60_000, pollMs: 500 });
      assert.ok(Date.now() - started < 30_000, 'did not wait for the 60 s timeout');
      assert.equal(report.healthy, false);
      for (const name of ['sick', 'crashloop', 'oom', 'clash']) assert.ok(report.criticalFailures.includes(name), name);
      assert.ok(!report.criticalFailures.includes('web'));
      assert.match(service(report, 'slow').reason, /stopped early: a critical service failed/);
    });

    test('an HTTP probe that does not answer its status is a critical failure', async () => {
      const good = `http://127.0.0.1:${webPort}/index.html`;
      const bad = `http://127.0.0.1:${webPort}/missing.html`;
      const report = await runtime.health({
        critical: ['web'],
        settleMs: 500,
        timeoutMs: 3000,
        pollMs: 500,
        http: [
          { url: good, status: 200 },
          { url: bad, status: 200 },
        ],
      });
      assert.equal(report.healthy, false);
      assert.deepEqual(report.criticalFailures, [`probe ${bad}`]);
      assert.deepEqual(report.probes[0], { url: good, ok: true, status: 200 });
      assert.deepEqual([report.probes[1]?.ok, report.probes[1]?.status], [false, 404]);
    });

    test('an invalid compose file is caught by validate() while the services keep running', async () => {
      const before = await projectContainers(project);
      const invalid = path.join(dir, 'next.yml');
      await writeFile(invalid, 'version: "2.4"\nservices:\n  web:\n    imagee: nope\n');
      await assert.rejects(runtime.validate(invalid), (error: NuwaxError) => {
        assert.equal(error.code, ErrorCodes.E_COMPOSE_INVALID);
        assert.match(error.message, /Unsupported config option for services\.web: 'imagee'/);
        return true;
      });
      const afterwards = await projectContainers(project);
      assert.deepEqual(
        afterwards.map((item) => [item.id, item.running]).sort(),
        before.map((item) => [item.id, item.running]).sort(),
      );
      assert.ok(afterwards.some((item) => item.service === 'web' && item.running));
    });

    test('collectDiagnostics returns the inspect output and the last log lines of one service', async () => {
      const diagnostics = await runtime.collectDiagnostics('crashloop');
      assert.equal(diagnostics['project'], project);
      assert.equal((diagnostics['containers'] as unknown[]).length, 1);
      assert.ok((diagnostics['logs'] as Record<string, string[]>)['crashloop']?.includes('crashing on purpose'));
      assert.match(String(diagnostics['compose_config']), /crashloop:/);
    });

    test('up with an image that is not present fails with E_COMPOSE and compose’s words, and starts nothing', async () => {
      const upDir = path.join(dir, 'upfail');
      await mkdir(upDir);
      const composeFile = await writeComposeProject(upDir, { app: loopService(`${image}-never-built`) });
      const failing = new DockerRuntime({
        dockerDir: upDir,
        composeFile,
        projectName: failedUpProject,
        commandTimeoutMs: 60_000,
      });
      await assert.rejects(
        failing.up(),
        (error: NuwaxError) =>
          error.code === ErrorCodes.E_COMPOSE &&
          /compose up failed: .+/.test(error.message) &&
          typeof error.details?.['stderr'] === 'string',
      );
      assert.deepEqual(await projectContainers(failedUpProject), []);
    });

    test('down removes every container of the project', async () => {
      await runtime.down();
      assert.deepEqual(await projectContainers(project), []);
    });
  },
);
