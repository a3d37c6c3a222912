import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ErrorCodes, isNuwaxError } from '../../src/errors/index.js';
import { detectCompose, runCommand } from '../../src/runtime/index.js';

const node = process.execPath;

async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('runCommand: the one spawn helper', () => {
  test('returns the exit code and both streams; a non-zero exit is not an error', async () => {
    const output = await runCommand(node, [
      '-e',
      'process.stdout.write("out"); process.stderr.write("err"); process.exit(3)',
    ]);
    assert.deepEqual(output, { code: 3, stdout: 'out', stderr: 'err' });
  });

  test('a command runs in a session of its own, so a Ctrl-C in the terminal reaches nuwax alone', {
    skip: process.platform === 'win32',
  }, async () => {
    const sessionOf = (pid: number | string) =>
      runCommand('ps', ['-o', 'sid=', '-p', String(pid)]).then((output) => output.stdout.trim());
    const child = await runCommand('sh', ['-c', 'ps -o sid= -p $$']);
    assert.equal(child.code, 0);
    assert.notEqual(child.stdout.trim(), await sessionOf(process.pid));
  });

  test('kills a command that outlives its timeout with E_TIMEOUT, and the process is gone', async () => {
    const folder = await mkdtemp(path.join(os.tmpdir(), 'nuwax-exec-'));
    const pidFile = path.join(folder, 'pid');
    try {
      const started = Date.now();
      const script = `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 1000)`;
      // 3 s: on a loaded machine node itself can take over a second to start and write its pid.
      await assert.rejects(
        runCommand(node, ['-e', script], { timeoutMs: 3000 }),
        (error: unknown) =>
          isNuwaxError(error, ErrorCodes.E_TIMEOUT) && /did not finish within/.test((error as Error).message),
      );
      assert.ok(Date.now() - started < 10_000);
      assert.equal(await alive(Number(await readFile(pidFile, 'utf8'))), false);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  test('an abort kills the command with E_ABORTED', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(
      runCommand(node, ['-e', 'setInterval(() => {}, 1000)'], { signal: controller.signal }),
      (error: unknown) => isNuwaxError(error, ErrorCodes.E_ABORTED),
    );
  });

  test('an already-aborted signal starts nothing', async () => {
    await assert.rejects(runCommand(node, ['-e', ''], { signal: AbortSignal.abort() }), (error: unknown) =>
      isNuwaxError(error, ErrorCodes.E_ABORTED),
    );
  });

  test('keeps captured output within its bound: head of stdout, tail of stderr', async () => {
    const script =
      'process.stdout.write("a".repeat(300000) + "END"); process.stderr.write("START" + "b".repeat(300000) + "LAST")';
    const output = await runCommand(node, ['-e', script], { maxCapture: 1000 });
    assert.equal(output.stdout.length, 1000);
    assert.ok(output.stdout.startsWith('aaa'));
    assert.equal(output.stderr.length, 1000);
    assert.ok(output.stderr.endsWith('LAST'));
  });

  test('a program that is not installed is E_DOCKER naming it', async () => {
    await assert.rejects(
      runCommand('nuwax-no-such-program', ['version']),
      (error: unknown) =>
        isNuwaxError(error, ErrorCodes.E_DOCKER) &&
        /nuwax-no-such-program.*not installed/.test((error as Error).message),
    );
  });

  test('a working directory that does not exist is named as such, not as a missing program', async () => {
    const missing = path.join(os.tmpdir(), 'nuwax-no-such-folder', 'docker');
    await assert.rejects(
      runCommand(node, ['-e', ''], { cwd: missing }),
      (error: unknown) =>
        isNuwaxError(error, ErrorCodes.E_DOCKER) &&
        (error as Error).message.includes(`working directory ${missing} does not exist`),
    );
  });
});

describe('detectCompose', () => {
  let fakeBin: string;
  before(async () => {
    fakeBin = await mkdtemp(path.join(os.tmpdir(), 'nuwax-fake-docker-'));
  });
  after(async () => {
    await rm(fakeBin, { recursive: true, force: true });
  });

  test('finds docker-compose v1 on this machine (no v2 plugin is installed here)', async (t) => {
    const v1 = await runCommand('docker-compose', ['version']).catch(() => null);
    if (v1?.code !== 0) {
      t.skip('docker-compose is not installed');
      return;
    }
    const docker = await runCommand('docker', ['compose', 'version']).catch(() => null);
    const compose = await detectCompose();
    assert.equal(compose.version, docker?.code === 0 ? 'v2' : 'v1');
    if (compose.version === 'v1') assert.deepEqual(compose, { command: 'docker-compose', args: [], version: 'v1' });
  });

  // The v2 plugin cannot be installed here (no internet): a stand-in `docker` that answers
  // `docker compose version` as v2 does is the only way to run this code path.
  test('prefers `docker compose` (v2) when it answers', async () => {
    const script = path.join(fakeBin, 'docker');
    await writeFile(
      script,
      '#!/bin/sh\nif [ "$1" = compose ] && [ "$2" = version ]; then echo "Docker Compose version v2.29.0"; exit 0; fi\nexit 1\n',
    );
    await chmod(script, 0o755);
    const compose = await detectCompose(undefined, { ...process.env, PATH: fakeBin });
    assert.deepEqual(compose, { command: 'docker', args: ['compose'], version: 'v2' });
  });

  test('E_COMPOSE when neither v2 nor v1 answers', async () => {
    const empty = path.join(fakeBin, 'empty');
    await rm(empty, { recursive: true, force: true });
    await assert.rejects(
      detectCompose(undefined, { ...process.env, PATH: empty }),
      (error: unknown) =>
        isNuwaxError(error, ErrorCodes.E_COMPOSE) && /docker compose.*docker-compose/.test((error as Error).message),
    );
  });
});
