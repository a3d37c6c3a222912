/**
 * Smoke test of the real Docker engine: runs whenever Docker is reachable; skipped when it is not,
 * and failed instead when NUWAX_REQUIRE_DOCKER=1 (CI).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DockerRuntime } from '../../src/runtime/index.js';
import {
  buildBusyboxImage,
  freePort,
  httpService,
  projectContainers,
  removeImages,
  removeProject,
  requireDockerOrSkip,
  uniqueName,
  writeComposeProject,
} from '../helpers/docker.js';

test('an imported busybox image comes up healthy behind its HEALTHCHECK and goes down', async (t) => {
  if (!(await requireDockerOrSkip(t))) return;
  const tag = `${uniqueName('nuwax-smoke')}:1`;
  const project = uniqueName('nuwaxsmoke');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nuwax-smoke-'));
  try {
    await buildBusyboxImage(tag);
    const port = await freePort();
    const composeFile = await writeComposeProject(dir, { web: httpService(tag, port, { page: 'smoke page' }) });
    const runtime = new DockerRuntime({ dockerDir: dir, composeFile, projectName: project, commandTimeoutMs: 60_000 });
    await runtime.validate();
    await runtime.up();
    const report = await runtime.health({
      settleMs: 500,
      timeoutMs: 30_000,
      pollMs: 300,
      http: [{ url: `http://127.0.0.1:${port}/index.html`, status: 200 }],
    });
    assert.equal(report.healthy, true, JSON.stringify(report));
    assert.deepEqual(report.healthyServices, ['web']);
    assert.equal(report.services[0]?.health, 'healthy');
    assert.equal((await (await fetch(`http://127.0.0.1:${port}/index.html`)).text()).trim(), 'smoke page');
    await runtime.down();
    assert.deepEqual(await projectContainers(project), []);
  } finally {
    await removeProject(project);
    await removeImages([tag]);
    await rm(dir, { recursive: true, force: true });
  }
});
