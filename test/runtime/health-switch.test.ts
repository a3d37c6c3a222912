/**
 * The health check that follows a switch, against the real Docker engine and real compose: it asks
 * compose nothing when the services were listed before the stop, asks again when the containers
 * disagree with that list, and looks when a settle time ends rather than a poll later.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkHealth, DockerRuntime } from '../../src/runtime/index.js';
import {
  buildBusyboxImage,
  dockerSuite,
  freePort,
  httpService,
  loopService,
  removeImages,
  removeProject,
  uniqueName,
  writeComposeProject,
} from '../helpers/docker.js';

/**
 * A PATH whose `docker-compose` and `docker compose` log their arguments to `log` and then run the
 * real command: what the runtime asked compose is read from the log.
 */
async function loggingPath(dir: string, log: string): Promise<string> {
  const bin = path.join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  const real = (name: string) =>
    (process.env.PATH ?? '')
      .split(path.delimiter)
      .map((folder) => path.join(folder, name))
      .find((file) => file !== path.join(bin, name) && existsSync(file));
  const compose = `#!/bin/sh\necho "$*" >> '${log}'\nexec '${real('docker-compose')}' "$@"\n`;
  const docker = `#!/bin/sh\n[ "$1" = compose ] && echo "$*" >> '${log}'\nexec '${real('docker')}' "$@"\n`;
  for (const [name, body] of [
    ['docker-compose', compose],
    ['docker', docker],
  ] as const) {
    await writeFile(path.join(bin, name), body);
    await chmod(path.join(bin, name), 0o755);
  }
  return `${bin}${path.delimiter}${process.env.PATH ?? ''}`;
}

/** The compose calls logged, `docker compose` (v2) and `docker-compose` (v1) alike, version checks left out. */
const composeCalls = async (log: string): Promise<string[]> =>
  (await readFile(log, 'utf8'))
    .split('\n')
    .filter((line) => line && !/\bversion$/.test(line))
    .map((line) => line.replace(/^compose /, ''));

describe('health after a switch (SPEC 8: only what must be cold is downtime)', await dockerSuite(), () => {
  const image = `${uniqueName('nuwax-health-switch')}:1`;
  const project = uniqueName('nuwaxhswitch');
  let dir: string;
  let log: string;
  let runtime: DockerRuntime;
  let stagedCompose: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'nuwax-health-switch-'));
    log = path.join(dir, 'compose.log');
    await buildBusyboxImage(image);
    const dockerDir = path.join(dir, 'docker');
    await mkdir(dockerDir, { recursive: true });
    const composeFile = await writeComposeProject(dockerDir, {
      web: httpService(image, await freePort()),
      worker: loopService(image),
    });
    // The release's copy of the same file, as the staging holds it before the switch.
    const staged = path.join(dir, 'staging');
    await mkdir(staged, { recursive: true });
    stagedCompose = path.join(staged, 'docker-compose.yml');
    await copyFile(composeFile, stagedCompose);
    runtime = new DockerRuntime({
      dockerDir,
      composeFile,
      projectName: project,
      stopTimeoutSeconds: 2,
      commandTimeoutMs: 120_000,
      env: { ...process.env, PATH: await loggingPath(dir, log) },
    });
    await runtime.up();
  });

  after(async () => {
    await removeProject(project);
    await removeImages([image]);
    await rm(dir, { recursive: true, force: true });
  });

  test('services listed from the staged file before the stop: the health check runs no compose at all', async () => {
    assert.deepEqual(await runtime.services(stagedCompose), ['web', 'worker']);
    assert.deepEqual(await composeCalls(log), [
      `-f ${path.join(dir, 'docker', 'docker-compose.yml')} -p ${project} --project-directory ` +
        `${path.join(dir, 'docker')} up -d --remove-orphans`,
      `-f ${stagedCompose} -p ${project} --project-directory ${path.dirname(stagedCompose)} config --services`,
    ]);
    await writeFile(log, '');
    const report = await runtime.health({ settleMs: 1000, timeoutMs: 30_000, critical: ['web'] });
    assert.equal(report.healthy, true, JSON.stringify(report));
    assert.deepEqual(report.healthyServices, ['web', 'worker']);
    assert.deepEqual(await composeCalls(log), []);
  });

  test('a changed compose file is listed again by compose (the remembered list is for the same text only)', async () => {
    const composeFile = path.join(dir, 'docker', 'docker-compose.yml');
    const text = await readFile(composeFile, 'utf8');
    try {
      await writeFile(composeFile, `# a comment changes the text, not the services\n${text}`);
      await writeFile(log, '');
      const report = await runtime.health({ settleMs: 1000, timeoutMs: 30_000 });
      assert.equal(report.healthy, true, JSON.stringify(report));
      assert.deepEqual(report.healthyServices, ['web', 'worker']);
      assert.deepEqual(
        (await composeCalls(log)).map((line) => line.split(' ').slice(-2).join(' ')),
        ['config --services'],
      );
    } finally {
      await writeFile(composeFile, text);
    }
  });

  test('containers that disagree with a remembered list make the check ask compose again', async () => {
    let asked = 0;
    const report = await checkHealth(
      project,
      {
        services: ['web'],
        fresh: async () => {
          asked += 1;
          return runtime.services();
        },
      },
      { settleMs: 1000, timeoutMs: 30_000 },
    );
    assert.equal(asked, 1);
    assert.deepEqual(report.healthyServices.sort(), ['web', 'worker']);
  });

  test('a settle time is looked at when it ends, not a whole poll later', async () => {
    await runtime.stop({ timeoutMs: 120_000 });
    await runtime.up();
    const started = Date.now();
    // The worker alone: web's HEALTHCHECK turns healthy at a moment only a poll (20 s here) sees.
    const report = await checkHealth(
      project,
      { services: ['worker'] },
      { settleMs: 2000, timeoutMs: 30_000, pollMs: 20_000 },
    );
    const elapsed = Date.now() - started;
    assert.equal(report.healthy, true, JSON.stringify(report));
    assert.match(report.services[0]?.reason ?? '', /^running for \d+(\.\d)? s without a HEALTHCHECK$/);
    // With only the 20 s poll it would be 20 s; the worker started during `up`, so at most its 2 s.
    assert.ok(elapsed < 10_000, `healthy after ${elapsed} ms`);
  });
});
