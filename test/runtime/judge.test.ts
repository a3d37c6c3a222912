import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  archOfImageFile,
  type ContainerFacts,
  DockerRuntime,
  judge,
  normaliseProjectName,
  portInUse,
  withoutArchSuffix,
} from '../../src/runtime/index.js';

const NOW = Date.parse('2026-01-01T00:00:10Z');

interface Facts {
  status?: string;
  running?: boolean;
  restarting?: boolean;
  oom?: boolean;
  exitCode?: number;
  startedSecondsAgo?: number;
  health?: string;
  restarts?: number;
  policy?: string;
  cmd?: string[];
  env?: string[];
  bindings?: Record<string, Array<{ HostPort?: string }>>;
  memory?: number;
}

function container(facts: Facts): ContainerFacts {
  return {
    Id: 'c0ffee00c0ffee00',
    Config: { Labels: {}, Cmd: facts.cmd ?? [], Env: facts.env ?? [] },
    HostConfig: {
      RestartPolicy: { Name: facts.policy ?? 'no' },
      PortBindings: facts.bindings ?? {},
      Memory: facts.memory ?? 0,
    },
    RestartCount: facts.restarts ?? 0,
    State: {
      Status: facts.status ?? 'running',
      Running: facts.running ?? true,
      Restarting: facts.restarting ?? false,
      OOMKilled: facts.oom ?? false,
      ExitCode: facts.exitCode ?? 0,
      StartedAt: new Date(NOW - (facts.startedSecondsAgo ?? 5) * 1000).toISOString(),
      ...(facts.health ? { Health: { Status: facts.health } } : {}),
    },
  };
}

const exited = (exitCode: number, extra: Facts = {}): Facts => ({
  status: 'exited',
  running: false,
  exitCode,
  ...extra,
});

// [behaviour, facts, expected: 'healthy' | 'unhealthy' | 'undecided', reason fragment]
const rows: Array<[string, Facts, 'healthy' | 'unhealthy' | 'undecided', string]> = [
  ['HEALTHCHECK healthy passes', { health: 'healthy' }, 'healthy', 'HEALTHCHECK healthy'],
  ['HEALTHCHECK unhealthy fails', { health: 'unhealthy' }, 'unhealthy', 'HEALTHCHECK unhealthy'],
  ['HEALTHCHECK starting waits', { health: 'starting' }, 'undecided', 'HEALTHCHECK starting'],
  ['no HEALTHCHECK, ran past the settle time, passes', { startedSecondsAgo: 5 }, 'healthy', 'running for 5 s'],
  ['no HEALTHCHECK, inside the settle time, waits', { startedSecondsAgo: 1 }, 'undecided', 'settling'],
  [
    'restarted once, current run past the settle time, passes',
    { startedSecondsAgo: 4, restarts: 1, policy: 'unless-stopped' },
    'healthy',
    'running',
  ],
  [
    'crash loop (3 restarts) fails without waiting for the timeout',
    { restarts: 3, restarting: true, exitCode: 1, policy: 'unless-stopped' },
    'unhealthy',
    'crash-looping: exited with code 1, restarted 3 times',
  ],
  [
    'crash loop fails even while its HEALTHCHECK is starting',
    { restarts: 4, health: 'starting', exitCode: 2, policy: 'always' },
    'unhealthy',
    'crash-looping',
  ],
  [
    'a first restart waits',
    { restarts: 1, restarting: true, exitCode: 1, policy: 'on-failure' },
    'undecided',
    'restarting after exit code 1',
  ],
  ['OOMKilled fails', exited(137, { oom: true }), 'unhealthy', 'OOMKilled'],
  [
    'SIGKILL under a memory limit, OOMKilled not (yet) set, names the limit',
    exited(137, { memory: 8 * 1048576 }),
    'unhealthy',
    'exited with code 137 (SIGKILL under a 8 MiB memory limit: likely out of memory)',
  ],
  ['SIGKILL without a memory limit is only an exit', exited(137), 'unhealthy', 'exited with code 137'],
  ['one-shot exited 0 passes', exited(0), 'healthy', 'one-shot'],
  ['one-shot with on-failure exited 0 passes', exited(0, { policy: 'on-failure' }), 'healthy', 'one-shot'],
  ['one-shot exited 1 fails', exited(1), 'unhealthy', 'exited with code 1'],
  [
    'on-failure:2 gave up after its retries fails',
    exited(1, { policy: 'on-failure', restarts: 2 }),
    'unhealthy',
    'exited with code 1, restarted 2 times',
  ],
  [
    'unless-stopped service that exited 0 fails (it was meant to run)',
    exited(0, { policy: 'unless-stopped' }),
    'unhealthy',
    'exited with code 0',
  ],
  [
    'a service with a HEALTHCHECK that exited fails',
    exited(3, { health: 'starting' }),
    'unhealthy',
    'exited with code 3',
  ],
  ['created but never started waits', { status: 'created', running: false }, 'undecided', 'created'],
];

describe('judge: SPEC 8 health rules for one container', () => {
  for (const [behaviour, facts, expected, reason] of rows) {
    test(behaviour, () => {
      const verdict = judge(container(facts), 3000, NOW);
      const got = !verdict.decided ? 'undecided' : verdict.healthy ? 'healthy' : 'unhealthy';
      assert.equal(got, expected);
      assert.match(verdict.reason, new RegExp(reason.replace(/[()]/g, '\\$&')));
    });
  }
});

describe('portInUse: the port a failing service could not bind', () => {
  test('is undefined when the logs do not mention a port in use', () => {
    assert.equal(portInUse(['starting', 'crashed: permission denied'], container({})), undefined);
  });
  test('comes from the log line when the program names it (node)', () => {
    assert.equal(portInUse(['Error: listen EADDRINUSE: address already in use 127.0.0.1:8080'], container({})), '8080');
  });
  test('comes from the command when busybox httpd does not name it', () => {
    assert.equal(
      portInUse(['httpd: bind: Address already in use'], container({ cmd: ['httpd', '-f', '-p', '127.0.0.1:41234'] })),
      '41234',
    );
    assert.equal(
      portInUse(
        ['httpd: bind: Address already in use'],
        container({ cmd: ['sh', '-c', 'exec httpd -f -p 127.0.0.1:41235'] }),
      ),
      '41235',
    );
  });
  test('comes from the published ports, then the environment', () => {
    assert.equal(
      portInUse(['bind: address already in use'], container({ bindings: { '80/tcp': [{ HostPort: '8081' }] } })),
      '8081',
    );
    assert.equal(
      portInUse(['bind: address already in use'], container({ env: ['PATH=/bin', 'APP_PORT=9000'] })),
      '9000',
    );
  });
  test('is "unknown" when nothing names the port', () => {
    assert.equal(portInUse(['bind: address already in use'], container({ cmd: ['server'] })), 'unknown');
  });
});

describe('image archive names and project names', () => {
  const archRows: Array<[string, string | null]> = [
    ['app-amd64.tar', 'x86_64'],
    ['app-x86_64.tar', 'x86_64'],
    ['app-arm64.tar', 'aarch64'],
    ['app-aarch64.tar', 'aarch64'],
    ['app.tar', null],
    ['app-amd64.tar.gz', null],
    ['amd64-app.tar', null],
  ];
  for (const [name, arch] of archRows) {
    test(`${name} loads on ${arch ?? 'every arch'}`, () => assert.equal(archOfImageFile(name), arch));
  }
  test('a tag loses its arch suffix and keeps the rest', () => {
    assert.equal(withoutArchSuffix('app:1.0-amd64'), 'app:1.0');
    assert.equal(withoutArchSuffix('registry:5000/app:1.0-aarch64'), 'registry:5000/app:1.0');
    assert.equal(withoutArchSuffix('app:1.0'), 'app:1.0');
  });
  test('project names are normalised as compose does', () => {
    assert.equal(normaliseProjectName('My App.v2'), 'myappv2');
    assert.equal(normaliseProjectName('nuwax_prod-1'), 'nuwax_prod-1');
  });
  test('the project name is the config override, else the compose file’s name:, else the folder (as nuwax-cli derives it)', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'nuwax-project-'));
    try {
      const dockerDir = path.join(home, 'My Docker.App');
      await mkdir(dockerDir);
      const composeFile = path.join(dockerDir, 'docker-compose.yml');
      await writeFile(composeFile, 'services:\n  web:\n    name: not-this\n');
      assert.equal(await new DockerRuntime({ dockerDir, composeFile }).projectName(), 'mydockerapp');
      await writeFile(composeFile, 'name: "Shop_Prod"\nservices:\n  web:\n    image: x\n');
      assert.equal(await new DockerRuntime({ dockerDir, composeFile }).projectName(), 'shop_prod');
      assert.equal(
        await new DockerRuntime({ dockerDir, composeFile, projectName: 'Nuwax.Edge' }).projectName(),
        'nuwaxedge',
      );
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
  test('down on a first install (no compose file yet) has nothing to stop', async () => {
    const dockerDir = path.join(os.tmpdir(), 'nuwax-no-such-deployment');
    assert.equal(
      await new DockerRuntime({ dockerDir, composeFile: path.join(dockerDir, 'docker-compose.yml') }).down(),
      null,
    );
  });
});
