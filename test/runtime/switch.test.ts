import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DockerRuntime } from '../../src/runtime/index.js';
import { requireDockerOrSkip } from '../helpers/docker.js';

const compose = (network: string, name = '') =>
  `${name}version: "2.4"\nservices:\n  web:\n    image: nuwax-not-pulled:1\n    networks: [back]\n` +
  `networks:\n  back: ${network}\n`;

async function withDeployment(
  live: string,
  staged: string,
  check: (runtime: DockerRuntime, stagedFile: string) => Promise<void>,
): Promise<void> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'nuwax-switch-'));
  try {
    const dockerDir = path.join(home, 'docker');
    const stagedDir = path.join(home, 'staging', 'root');
    await mkdir(dockerDir, { recursive: true });
    await mkdir(stagedDir, { recursive: true });
    await writeFile(path.join(dockerDir, 'docker-compose.yml'), live);
    await writeFile(path.join(stagedDir, 'docker-compose.yml'), staged);
    const runtime = new DockerRuntime({ dockerDir, composeFile: path.join(dockerDir, 'docker-compose.yml') });
    await check(runtime, path.join(stagedDir, 'docker-compose.yml'));
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

test('a release that keeps the project and its networks is switched with stop (no reason for down)', async (t) => {
  if (!(await requireDockerOrSkip(t))) return;
  await withDeployment(compose('{}'), `# the new version\n${compose('{}')}`, async (runtime, staged) => {
    assert.equal(await runtime.switchNeedsDown(staged), null);
  });
});

test('a release that changes a network needs down: compose cannot change an existing network', async (t) => {
  if (!(await requireDockerOrSkip(t))) return;
  await withDeployment(compose('{}'), compose('{ internal: true }'), async (runtime, staged) => {
    assert.equal(await runtime.switchNeedsDown(staged), 'the networks change');
  });
});

test('a release that renames the project needs down: stop would leave the old containers behind', async (t) => {
  if (!(await requireDockerOrSkip(t))) return;
  await withDeployment(compose('{}'), compose('{}', 'name: shop\n'), async (runtime, staged) => {
    assert.equal(await runtime.switchNeedsDown(staged), 'the project name changes from docker to shop');
  });
});
