import assert from 'node:assert/strict';
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { homePaths, parseConfig } from '../../src/config/index.js';
import { type DoctorDocker, type DoctorOptions, gatherFacts, judgeFacts } from '../../src/doctor/index.js';
import { NuwaxError } from '../../src/errors/index.js';
import { silentLogger } from '../../src/log/index.js';
import { openStore, type Store } from '../../src/state/index.js';
import { withTempDir } from '../helpers/cli.js';

/**
 * Gathering on real temp folders. The review's example, a 0700 Postgres folder under docker/ that
 * a non-root doctor cannot read (EACCES), cannot be built here: the tests run as root, and root
 * reads every folder. These use failures that happen for root too (a folder where the compose file
 * should be: EISDIR; a file where docker/ should be: ENOTDIR; a probe failing with EINVAL) and go
 * through the same catches; judge.test.ts judges EACCES facts.
 */

/** Docker as a box without compose has it: the engine answers, compose is missing. */
function fakeDocker(overrides: Partial<DoctorDocker> = {}): DoctorDocker {
  return {
    engine: async () => ({ reachable: true, version: '27.5.1' }),
    compose: async () => ({ found: false, reason: 'compose is not installed' }),
    composeConfig: async () => {
      throw new NuwaxError('E_COMPOSE', 'compose is not available');
    },
    ownPorts: async () => [],
    services: async () => ({ seen: true, project: 'box', services: [] }),
    ...overrides,
  };
}

const CONFIG = '[versions]\ndocker_service = "1.4.0.1"\n';

async function gather(home: string, toml: string, store: Store, extra: Partial<DoctorOptions> = {}) {
  const config = parseConfig(toml);
  const options: DoctorOptions = {
    config,
    paths: homePaths(home, config),
    store,
    clientVersion: '0.1.0',
    docker: fakeDocker(),
    logger: silentLogger,
    probePort: async () => 'free',
    ...extra,
  };
  const facts = await gatherFacts(options);
  return { facts, report: judgeFacts(facts) };
}

async function withStore<T>(home: string, work: (store: Store) => Promise<T>): Promise<T> {
  const store = openStore(path.join(home, 'data', 'nuwax.db'));
  try {
    return await work(store);
  } finally {
    store.close();
  }
}

const statusOf = (report: ReturnType<typeof judgeFacts>, id: string) =>
  report.checks.find((check) => check.id === id)?.status;

describe('doctor gathers every fact even when one cannot be read', { concurrency: 2 }, () => {
  test('a folder where the compose file should be (EISDIR): the compose file check fails naming it; the other checks still judge', () =>
    withTempDir('doctor-gather', async (home) => {
      const composeFile = path.join(home, 'docker', 'docker-compose.yml');
      await mkdir(composeFile, { recursive: true });
      await withStore(home, async (store) => {
        const { facts, report } = await gather(home, CONFIG, store);
        assert.deepEqual(facts.composeFile, { path: composeFile, state: 'unreadable', code: 'EISDIR' });
        assert.equal(statusOf(report, 'compose_file'), 'fail');
        assert.match(
          report.checks.find((check) => check.id === 'compose_file')!.message,
          new RegExp(`${composeFile} cannot be read \\(EISDIR\\)`),
        );
        assert.deepEqual(facts.ports, { state: 'unchecked', reason: 'the compose file cannot be read', warn: true });
        assert.equal(report.checks.length, 10);
        assert.equal(report.verdict, 'NOT_READY');
        assert.equal(facts.disk.areas.length, 4, 'the disk is still measured');
        assert.deepEqual(facts.disk.errors, []);
      });
    }));

  test('a file where docker/ should be (ENOTDIR): the backup estimate is a disk warning naming the path and the code', () =>
    withTempDir('doctor-gather', async (home) => {
      await writeFile(path.join(home, 'docker'), 'not a folder');
      await withStore(home, async (store) => {
        const { facts, report } = await gather(home, CONFIG, store);
        assert.deepEqual(facts.disk.errors, [
          { what: 'estimate the backup', path: path.join(home, 'docker'), code: 'ENOTDIR' },
        ]);
        assert.equal(facts.disk.areas.length, 4);
        const disk = report.checks.find((check) => check.id === 'disk')!;
        assert.equal(disk.status, 'warn', disk.message);
        assert.match(
          disk.message,
          new RegExp(`^cannot estimate the backup: ${path.join(home, 'docker')} \\(ENOTDIR\\); so far `),
        );
        assert.equal(report.checks.length, 10);
      });
    }));

  test('a port probe failing with an errno it does not map (EINVAL) leaves that port unchecked, the others probed', () =>
    withTempDir('doctor-gather', async (home) => {
      await mkdir(path.join(home, 'docker'));
      await writeFile(
        path.join(home, 'docker', 'docker-compose.yml'),
        'services:\n  web:\n    image: busybox\n    ports: ["8080:80", "127.0.0.1:8081:81"]\n',
      );
      const probePort = async (hostIp: string | null) => {
        if (hostIp === null) return 'free' as const;
        throw Object.assign(new Error('bind EINVAL 127.0.0.1:8081'), { code: 'EINVAL' });
      };
      await withStore(home, async (store) => {
        const { facts, report } = await gather(home, CONFIG, store, { probePort });
        assert.equal(facts.ports.state, 'checked');
        assert.deepEqual(
          facts.ports.state === 'checked' && facts.ports.probes.map((probe) => [probe.port, probe.result, probe.error]),
          [
            [8080, 'free', undefined],
            [8081, 'error', 'EINVAL'],
          ],
        );
        const ports = report.checks.find((check) => check.id === 'ports')!;
        assert.equal(ports.status, 'warn');
        assert.match(ports.message, /127\.0\.0\.1:8081\/tcp \(web\): the probe failed \(EINVAL\)/);
      });
    }));

  test('a Docker collaborator that throws becomes the Docker and compose facts', () =>
    withTempDir('doctor-gather', async (home) => {
      const docker = fakeDocker({
        engine: () => {
          throw Object.assign(new Error('spawn docker EMFILE'), { code: 'EMFILE' });
        },
        compose: async () => {
          throw new TypeError('bad');
        },
      });
      await withStore(home, async (store) => {
        const { facts, report } = await gather(home, CONFIG, store, { docker });
        assert.deepEqual(facts.docker, { reachable: false, reason: 'cannot ask Docker (EMFILE)' });
        assert.deepEqual(facts.compose, { found: false, reason: 'cannot look for compose (TypeError)' });
        assert.equal(statusOf(report, 'docker'), 'fail');
        assert.equal(statusOf(report, 'compose'), 'fail');
        assert.equal(report.checks.length, 10);
      });
    }));
});

describe('doctor reads the staged release of an air-gapped box', () => {
  /** The record runUpgrade writes after `nuwax import` or `upgrade --download-only` (src/upgrade/orchestrator.ts). */
  const STAGED = {
    version: '1.4.0.2',
    strategy: 'full',
    from: '1.4.0.1',
    package: '/box/cache/downloads/full.tar.gz',
    sha256: 'c'.repeat(64),
    stagedRoot: null,
    manifest: '',
    manifestUrl: 'bundle:',
    signed: true,
    upgradeId: 1,
  };

  test('no [server] but a staged release: the server check warns naming it; the store is only read (no row changed, no lock file)', () =>
    withTempDir('doctor-gather', async (home) => {
      await withStore(home, async (store) => {
        store.kv.set('staged', STAGED);
        const before = store.db.prepare('SELECT key, value, updated_at FROM kv ORDER BY key').all();
        const changes = () => (store.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
        const changesBefore = changes();
        const { facts, report } = await gather(home, CONFIG, store);
        assert.equal(facts.server.staged, '1.4.0.2');
        const server = report.checks.find((check) => check.id === 'server')!;
        assert.equal(server.status, 'warn');
        assert.match(server.message, /staged release 1\.4\.0\.2/);
        assert.equal(changes(), changesBefore, 'doctor wrote to the store');
        assert.deepEqual(store.db.prepare('SELECT key, value, updated_at FROM kv ORDER BY key').all(), before);
        await assert.rejects(access(homePaths(home, parseConfig(CONFIG)).lockFile), { code: 'ENOENT' });
      });
    }));

  test('no [server] and nothing staged: the server check still fails', () =>
    withTempDir('doctor-gather', async (home) => {
      await withStore(home, async (store) => {
        const { facts, report } = await gather(home, CONFIG, store);
        assert.equal(facts.server.staged, undefined);
        assert.equal(statusOf(report, 'server'), 'fail');
        assert.equal(report.verdict, 'NOT_READY');
      });
    }));

  test('a configured server that is down with a release staged: the server check warns naming it (the upgrade falls back to it)', () =>
    withTempDir('doctor-gather', async (home) => {
      await withStore(home, async (store) => {
        store.kv.set('staged', STAGED);
        const { facts, report } = await gather(
          home,
          `${CONFIG}\n[server]\nmanifest_url = "http://127.0.0.1:9/manifest.json"\ntimeout = 5\n`,
          store,
        );
        assert.equal(facts.server.staged, '1.4.0.2');
        assert.equal(facts.server.error?.code, 'E_NETWORK');
        assert.equal(statusOf(report, 'server'), 'warn');
      });
    }));
});
