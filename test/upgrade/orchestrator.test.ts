import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { homePaths, loadConfig } from '../../src/config/index.js';
import { ErrorCodes, NuwaxError } from '../../src/errors/index.js';
import { silentLogger } from '../../src/log/index.js';
import { generateKeyPair, loadPrivateKey, signBytes } from '../../src/manifest/signature.js';
import { openStore } from '../../src/state/index.js';
import {
  exitCodeFor,
  listSteps,
  readStaged,
  recoverUnfinished,
  rollbackToBackup,
  runUpgrade,
  type UpgradeResult,
} from '../../src/upgrade/index.js';
import type { UpgradeEvent } from '../../src/events/index.js';
import { withTempDir } from '../helpers/cli.js';
import { makeImmutable, makeMutable } from '../helpers/readonly.js';
import { ReleaseServer } from '../helpers/release-server.js';
import { fakeCollaborators, type FakeOptions } from './fakes.js';

const HASH = 'c'.repeat(64);
const server = new ReleaseServer();
before(async () => {
  await server.start();
  server.set(
    '/manifest.json',
    JSON.stringify({
      version: '1.1.0',
      release_notes: 'B',
      platforms: {
        x86_64: { url: 'b.tar.gz', hash: HASH, size: 7 },
        aarch64: { url: 'b.tar.gz', hash: HASH, size: 7 },
      },
    }),
  );
});
after(() => server.stop());

interface Box {
  home: string;
  dockerDir: string;
  calls: string[];
  events: UpgradeEvent[];
  result: UpgradeResult;
  read(file: string): Promise<string>;
}

async function setUp(home: string, migrations: Record<string, string> = {}) {
  const dockerDir = path.join(home, 'docker');
  await mkdir(path.join(dockerDir, 'data'), { recursive: true });
  await mkdir(path.join(dockerDir, 'migrations'), { recursive: true });
  await writeFile(
    path.join(home, 'config.toml'),
    `# my box\n[versions]\ndocker_service = "1.0.0" # installed\n\n[server]\nmanifest_url = "${server.url}/manifest.json"\n\n[health]\ntimeout = 5\n`,
  );
  await writeFile(path.join(dockerDir, 'docker-compose.yml'), 'services: {}\n');
  await writeFile(path.join(dockerDir, 'VERSION'), '1.0.0');
  await writeFile(path.join(dockerDir, 'data', 'db'), 'rows-of-A');
  for (const [name, body] of Object.entries(migrations))
    await writeFile(path.join(dockerDir, 'migrations', name), body);
  return dockerDir;
}

async function upgrade(
  home: string,
  fake: Omit<FakeOptions, 'to'>,
  extra: Partial<Parameters<typeof runUpgrade>[0]> = {},
): Promise<Box> {
  const { config, file } = await loadConfig(home);
  const paths = homePaths(home, config, file);
  const store = openStore(paths.dbFile);
  const calls: string[] = [];
  const events: UpgradeEvent[] = [];
  try {
    const result = await runUpgrade({
      config,
      paths,
      store,
      collaborators: fakeCollaborators(paths.dockerDir, { ...fake, to: '1.1.0' }, calls),
      clientVersion: '0.1.0',
      logger: silentLogger,
      hostArch: 'x64',
      trigger: 'manual',
      startedBy: 'test',
      onEvent: (event) => events.push(event),
      ...extra,
    });
    return {
      home,
      dockerDir: paths.dockerDir,
      calls,
      events,
      result,
      read: (name) => readFile(path.join(home, name), 'utf8'),
    };
  } finally {
    store.close();
  }
}

/** A migration that appends its name to docker/data/log, so order and reversal are visible. */
const log = (name: string, exit = 0) =>
  `echo ${name} "$NUWAX_FROM_VERSION" "$NUWAX_TO_VERSION" >> data/log\nexit ${exit}\n`;

describe('upgrade decision tree (SPEC 8)', () => {
  test('success runs every step in order, commits the version keeping config comments, records scripts', () =>
    withTempDir('orch', async (home) => {
      await setUp(home, {
        'up-1.0.5.sh': log('up-1.0.5'),
        'up-1.1.0.sh': log('up-1.1.0'),
        'up-0.9.0.sh': log('up-0.9.0'),
        'up-1.2.0.sh': log('up-1.2.0'),
      });
      const box = await upgrade(home, {});
      assert.equal(box.result.status, 'success', JSON.stringify(box.result));
      assert.equal(exitCodeFor(box.result), 0);
      const steps = box.events
        .filter((event) => event.type === 'step' && event.status === 'done')
        .map((event) => (event as { step: string }).step);
      assert.deepEqual(steps, [
        'checking',
        'downloading',
        'verifying',
        'staging',
        'loading_images',
        'backing_up',
        'stopping',
        'applying',
        'migrating',
        'starting',
        'health_check',
        'committing',
        'cleaning_up',
      ]);
      assert.equal(await box.read('docker/data/log'), 'up-1.0.5 1.0.0 1.1.0\nup-1.1.0 1.0.0 1.1.0\n');
      const config = await box.read('config.toml');
      assert.match(config, /docker_service = "1\.1\.0" # installed/);
      assert.match(config, /^# my box/);
      if (box.result.status === 'success') {
        assert.deepEqual(box.result.executed_scripts, ['up-1.0.5.sh', 'up-1.1.0.sh']);
        assert.equal(box.result.backup_id, 7);
        assert.equal(box.result.from, '1.0.0');
        assert.ok(box.result.downtime_ms >= 0);
      }
      assert.equal(box.events.at(-1)?.type, 'result');
    }));

  test('the result breaks the downtime down by step, the stop cut out of the backup, adding up to downtime_ms', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, { slowMs: 150 });
      assert.equal(box.result.status, 'success', JSON.stringify(box.result));
      if (box.result.status !== 'success') return;
      const downtime = box.result.downtime;
      assert.ok(downtime, 'a downtime breakdown');
      // The backup stops the services itself: down is the stop, the archive the backup.
      assert.ok(downtime.stop >= 140 && downtime.stop < 300, JSON.stringify(downtime));
      assert.ok(downtime.backup >= 140 && downtime.backup < 300, JSON.stringify(downtime));
      assert.ok(downtime.start >= 140, JSON.stringify(downtime));
      assert.ok(downtime.healthy >= 140, JSON.stringify(downtime));
      assert.equal(downtime.other, 0);
      const total = Object.values(downtime).reduce((sum, ms) => sum + ms, 0);
      assert.ok(Math.abs(total - box.result.downtime_ms) <= 50, JSON.stringify(box.result));
      // The stop and the backup both ran in backing_up: the step's time is theirs (and its journal writes).
      const backingUp = box.result.steps.find((step) => step.step === 'backing_up');
      assert.ok(
        backingUp && Math.abs(backingUp.ms - (downtime.stop + downtime.backup)) <= 50,
        JSON.stringify(box.result),
      );
    }));

  test('the switch stops the old services and keeps their containers; the rollback removes them (down)', () =>
    withTempDir('orch', async (home) => {
      await setUp(home, { 'up-1.1.0.sh': log('up-1.1.0', 3) });
      const box = await upgrade(home, { stagedFiles: { 'docker-compose.yml': 'services: {}\n' } });
      assert.equal(box.result.status, 'failed');
      const switched = box.calls.indexOf('stop');
      assert.ok(switched >= 0 && switched < box.calls.indexOf('backup'), box.calls.join(' '));
      assert.ok(box.calls.indexOf('down') > box.calls.indexOf('apply'), box.calls.join(' '));
      assert.equal(box.calls.filter((call) => call === 'stop').length, 1);
      assert.equal(await box.read('docker/VERSION'), '1.0.0');
    }));

  test('a release that changes the project or its networks switches with compose down', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, {
        switchNeedsDown: 'the networks change',
        stagedFiles: { 'docker-compose.yml': 'services: {}\nnetworks: { back: { internal: true } }\n' },
      });
      assert.equal(box.result.status, 'success', JSON.stringify(box.result));
      assert.ok(!box.calls.includes('stop'), box.calls.join(' '));
      assert.ok(box.calls.indexOf('down') < box.calls.indexOf('backup'), box.calls.join(' '));
      assert.ok(
        box.events.some((event) => event.type === 'log' && /compose down\): the networks change/.test(event.message)),
      );
    }));

  test('a release that replaces .env without its compose file switches with compose down', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, { stagedFiles: { '.env': 'NET=back\n' } });
      assert.equal(box.result.status, 'success', JSON.stringify(box.result));
      assert.ok(!box.calls.includes('stop') && box.calls.includes('down'), box.calls.join(' '));
    }));

  test('a second run is up_to_date', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      await upgrade(home, {});
      const again = await upgrade(home, {});
      assert.equal(again.result.status, 'up_to_date');
      assert.ok(!again.calls.includes('download'));
    }));

  test('backup fails: old services restarted, nothing changed, exit 4', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, { failBackup: true });
      assert.equal(box.result.status, 'failed');
      assert.equal(exitCodeFor(box.result), 4);
      assert.deepEqual(box.calls.slice(-2), ['backup', 'up:1.0.0']);
      assert.ok(!box.calls.includes('apply'));
      assert.equal(await box.read('docker/VERSION'), '1.0.0');
      assert.match(await box.read('config.toml'), /docker_service = "1\.0\.0"/);
    }));

  test('migration fails: down scripts in reverse, files and data restored, old services healthy, exit 4', () =>
    withTempDir('orch', async (home) => {
      await setUp(home, {
        'up-1.0.5.sh': `${log('up-1.0.5')}echo corrupted > data/db\n`,
        'down-1.0.5.sh': log('down-1.0.5'),
        'up-1.1.0.sh': log('up-1.1.0', 3),
        'down-1.1.0.sh': log('down-1.1.0'),
      });
      const box = await upgrade(home, {});
      assert.equal(box.result.status, 'failed', JSON.stringify(box.result));
      assert.equal(exitCodeFor(box.result), 4);
      if (box.result.status === 'failed' && 'recovered' in box.result) {
        assert.equal(box.result.step, 'migrating');
        assert.equal(box.result.error.code, 'E_MIGRATION');
        assert.match(box.result.diagnosis.cause, /up-1\.1\.0\.sh/);
        assert.equal(box.result.previous_version, '1.0.0');
      }
      assert.equal(await box.read('docker/data/db'), 'rows-of-A');
      assert.equal(await box.read('docker/VERSION'), '1.0.0');
      assert.deepEqual(box.calls.slice(-4), ['undo', 'restore', 'up:1.0.0', 'health:1.0.0']);
      const bundle = JSON.parse(
        await box.read(`logs/failures/${box.result.status === 'failed' ? box.result.upgrade_id : 0}/result.json`),
      );
      assert.equal(bundle.status, 'failed');
    }));

  test('a rollback reads the containers first; with --skip-backup the diagnosis never says a backup was restored', () =>
    withTempDir('orch', async (home) => {
      await setUp(home, { 'up-1.1.0.sh': log('up-1.1.0', 3), 'down-1.1.0.sh': log('down-1.1.0') });
      const box = await upgrade(home, {}, { skipBackup: true });
      assert.equal(box.result.status, 'failed');
      if (box.result.status !== 'failed' || !('diagnosis' in box.result)) return assert.fail('a rolled-back result');
      assert.equal(box.result.error.code, 'E_MIGRATION');
      const text = [box.result.diagnosis.cause, ...box.result.diagnosis.recommendations].join('\n');
      assert.doesNotMatch(text, /backup was restored/);
      assert.match(text, /no backup was taken/);
      // The evidence is read once, before the rollback stops the new services or undoes anything.
      const evidence = box.calls.indexOf('evidence');
      assert.ok(evidence >= 0 && box.calls.lastIndexOf('evidence') === evidence, box.calls.join(' '));
      assert.ok(evidence < box.calls.lastIndexOf('down') && evidence < box.calls.indexOf('undo'), box.calls.join(' '));
      const bundle = path.join(home, 'logs', 'failures', String(box.result.upgrade_id));
      assert.deepEqual(JSON.parse(await readFile(path.join(bundle, 'evidence.json'), 'utf8')), {
        project: 'fake',
        compose: 'docker compose',
        services: [],
      });
    }));

  test('compose up fails: rolled back, exit 4', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, { failUp: 'new' });
      assert.equal(exitCodeFor(box.result), 4);
      assert.equal(box.result.status === 'failed' && box.result.step, 'starting');
      assert.equal(await box.read('docker/VERSION'), '1.0.0');
      assert.ok(box.calls.includes('up:1.0.0'));
    }));

  test('critical service unhealthy: rolled back, exit 4', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, { unhealthy: 'critical' });
      assert.equal(exitCodeFor(box.result), 4);
      assert.equal(box.result.status === 'failed' && box.result.error.code, 'E_HEALTH');
      assert.equal(await box.read('docker/VERSION'), '1.0.0');
    }));

  test('only a non-critical service unhealthy: partial_success, kept, state marked partial, exit 3', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, { unhealthy: 'noncritical' });
      assert.equal(box.result.status, 'partial_success');
      assert.equal(exitCodeFor(box.result), 3);
      if (box.result.status === 'partial_success') assert.deepEqual(box.result.unhealthy_services, ['worker']);
      assert.equal(await box.read('docker/VERSION'), '1.1.0');
      const store = openStore(path.join(home, 'data', 'nuwax.db'));
      assert.equal(store.deployment.get().partial, true);
      store.close();
    }));

  test('--skip-backup and a failure: recovered false, exit 5, manual steps', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, { failUp: 'new' }, { skipBackup: true });
      assert.equal(exitCodeFor(box.result), 5);
      if (box.result.status === 'failed' && 'recovered' in box.result) {
        assert.equal(box.result.recovered, false);
        assert.ok(box.result.manual_steps && box.result.manual_steps.length > 0);
      }
    }));

  test('rollback itself fails: recovered false, exit 5, never a silent success', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, { failUp: 'always' });
      assert.equal(box.result.status, 'failed');
      assert.equal(exitCodeFor(box.result), 5);
    }));

  test('declining the confirmation changes nothing, exit 1', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, {}, { confirm: async () => false });
      assert.equal(exitCodeFor(box.result), 1);
      assert.ok(!box.calls.includes('down') && !box.calls.includes('stop'));
    }));

  test('config.toml read-only (immutable): refused before the switch with E_CONFIG_READONLY, nothing changed, exit 1', (t) =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const config = path.join(home, 'config.toml');
      const before = await readFile(config, 'utf8');
      if (!makeImmutable(config)) return t.skip('chattr +i is not supported here');
      let box: Box;
      try {
        box = await upgrade(home, {});
      } finally {
        makeMutable(config);
      }
      assert.equal(box.result.status, 'failed');
      if (box.result.status !== 'failed') return;
      assert.equal(box.result.error.code, ErrorCodes.E_CONFIG_READONLY);
      assert.equal('changed' in box.result && box.result.changed, false);
      assert.equal(exitCodeFor(box.result), 1);
      assert.ok(!box.calls.includes('down') && !box.calls.includes('stop'), 'no service was stopped');
      assert.ok(!box.calls.includes('backup'), 'no backup was taken');
      assert.ok(!box.calls.includes('apply'));
      assert.equal(await box.read('docker/VERSION'), '1.0.0');
      assert.equal(await readFile(config, 'utf8'), before);
      assert.deepEqual(await readdir(home).then((names) => names.filter((name) => name.endsWith('.tmp'))), []);
    }));

  test('the commit fails after the switch (config.toml made read-only meanwhile): rolled back, versions agree', (t) =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const config = path.join(home, 'config.toml');
      let immutable = false;
      let unsupported = false;
      let box: Box;
      try {
        box = await upgrade(
          home,
          {},
          {
            onEvent: (event) => {
              if (event.type === 'step' && event.step === 'health_check' && event.status === 'running') {
                immutable = makeImmutable(config);
                unsupported = !immutable;
              }
            },
          },
        );
      } finally {
        if (immutable) makeMutable(config);
      }
      if (unsupported) return t.skip('chattr +i is not supported here');
      assert.equal(box.result.status, 'failed');
      if (box.result.status !== 'failed' || !('recovered' in box.result)) return assert.fail('a rolled-back result');
      assert.equal(box.result.step, 'committing');
      assert.equal(box.result.error.code, ErrorCodes.E_PERMISSION);
      assert.equal(box.result.recovered, true);
      assert.equal(exitCodeFor(box.result), 4);
      // The old version runs again and is the one recorded, in config.toml and in SQLite.
      assert.equal(await box.read('docker/VERSION'), '1.0.0');
      assert.equal(box.calls.at(-2), 'up:1.0.0');
      assert.match(await box.read('config.toml'), /docker_service = "1\.0\.0"/);
      const store = openStore(path.join(home, 'data', 'nuwax.db'));
      try {
        assert.notEqual(store.deployment.get().version, '1.1.0');
        assert.equal(store.upgrades.list(1)[0]?.status, 'failed');
      } finally {
        store.close();
      }
    }));

  test('an unreachable server fails at checking with changed:false, exit 1', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      await writeFile(
        path.join(home, 'config.toml'),
        '[versions]\ndocker_service = "1.0.0"\n[server]\nmanifest_url = "http://127.0.0.1:9/m.json"\n',
      );
      const box = await upgrade(home, {});
      assert.equal(box.result.status, 'failed');
      assert.equal(exitCodeFor(box.result), 1);
      assert.equal(box.result.status === 'failed' && box.result.step, 'checking');
    }));
});

describe('traffic.sh around the switch', () => {
  test('off before the services stop, on once the new version is healthy; the result records both', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, { traffic: 'ok' });
      assert.equal(box.result.status, 'success');
      const at = (call: string) => box.calls.indexOf(call);
      assert.ok(
        at('traffic:off') >= 0 && at('traffic:off') < at('stop') && at('stop') < at('backup'),
        box.calls.join(),
      );
      assert.ok(at('traffic:on') > at('health:1.1.0'), box.calls.join());
      assert.equal(box.result.traffic?.off?.success, true);
      assert.equal(box.result.traffic?.on?.success, true);
    }));

  test('a failing off ends the upgrade with nothing changed (exit 1): no stop, no backup, no on', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, { traffic: 'fail_off' });
      assert.equal(box.result.status, 'failed');
      assert.equal(exitCodeFor(box.result), 1);
      assert.equal(box.result.status === 'failed' && box.result.step, 'traffic_off');
      assert.equal(box.result.status === 'failed' && box.result.error.code, 'E_TRAFFIC');
      for (const call of ['backup', 'down', 'stop', 'apply', 'traffic:on']) assert.ok(!box.calls.includes(call), call);
      assert.equal(box.result.traffic?.off?.success, false);
      assert.equal(await box.read('docker/VERSION'), '1.0.0');
    }));

  test('a rollback lets the traffic back in once the old version is healthy', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, { traffic: 'ok', unhealthy: 'critical' });
      assert.equal(exitCodeFor(box.result), 4);
      assert.deepEqual(box.calls.slice(-3), ['up:1.0.0', 'health:1.0.0', 'traffic:on']);
      assert.equal(box.calls.filter((call) => call === 'traffic:on').length, 1);
      assert.equal(box.result.traffic?.on?.success, true);
    }));

  test('a failed backup restarts the old services, then lets the traffic back in', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, { traffic: 'ok', failBackup: true });
      assert.deepEqual(box.calls.slice(-3), ['backup', 'up:1.0.0', 'traffic:on']);
    }));

  test('a failing on after a healthy switch is reported, the new version kept', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, { traffic: 'fail_on' });
      assert.equal(box.result.status, 'success');
      assert.equal(box.result.traffic?.on?.success, false);
      assert.equal(await box.read('docker/VERSION'), '1.1.0');
    }));
});

describe('traffic.sh around nuwax rollback', () => {
  async function rollback(home: string, traffic: 'ok' | 'fail_off') {
    const { config, file } = await loadConfig(home);
    const paths = homePaths(home, config, file);
    const store = openStore(paths.dbFile);
    const calls: string[] = [];
    // The fake backup lives in a file of its own; the rollback looks for a complete record.
    const id = store.backups.begin({ version: '1.0.0', kind: 'pre-upgrade', paths: ['VERSION'] });
    store.backups.complete(id, { path: null, size: 1, sha256: null, files: 1 });
    try {
      const result = await rollbackToBackup({
        config,
        paths,
        store,
        collaborators: fakeCollaborators(paths.dockerDir, { to: '1.1.0', traffic }, calls),
        logger: silentLogger,
        backupId: id,
        startedBy: 'test',
      });
      return { result, calls };
    } finally {
      store.close();
    }
  }

  test('off before the stop, on once the restored version is healthy', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, {});
      assert.equal(box.result.status, 'success');
      const { result, calls } = await rollback(home, 'ok');
      assert.equal(result.status, 'success', JSON.stringify(result));
      assert.deepEqual(calls, ['traffic:off', 'down', 'restore', 'up:1.0.0', 'health:1.0.0', 'traffic:on']);
    }));

  test('a failing off changes nothing: no stop, no restore (exit 1)', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const box = await upgrade(home, {});
      assert.equal(box.result.status, 'success');
      const { result, calls } = await rollback(home, 'fail_off');
      assert.equal(exitCodeFor(result), 1);
      assert.deepEqual(calls, ['traffic:off']);
      assert.equal(await box.read('docker/VERSION'), '1.1.0');
    }));
});

describe('staged releases: disk and trust', () => {
  const stagingOf = (home: string) => path.join(home, 'cache', 'staging');
  const entries = async (folder: string) => (await readdir(folder).catch(() => [] as string[])).sort();
  const withManifestUrl = (home: string, url: string, security = '') =>
    writeFile(
      path.join(home, 'config.toml'),
      `[versions]\ndocker_service = "1.0.0"\n[server]\nmanifest_url = "${url}"\n[health]\ntimeout = 5\n${security}`,
    );

  test('pre-staging what is staged redoes nothing; extractions nobody needs are removed; a commit leaves staging empty', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const first = await upgrade(home, {}, { downloadOnly: true });
      assert.equal(first.result.status, 'staged', JSON.stringify(first.result));
      const [stagedFolder] = await entries(stagingOf(home));
      assert.ok(stagedFolder, 'the staged release is extracted');
      // A failed or killed upgrade left its extraction behind.
      await mkdir(path.join(stagingOf(home), '1.1.0-99', 'root'), { recursive: true });
      // The server is down: the daemon's next pre-stage cycle falls back to the staged release.
      await withManifestUrl(home, 'http://127.0.0.1:9/manifest.json');
      const again = await upgrade(home, {}, { downloadOnly: true });
      assert.equal(again.result.status, 'staged');
      assert.equal(
        again.result.status === 'staged' && again.result.upgrade_id,
        first.result.status === 'staged' && first.result.upgrade_id,
        'the same staged release',
      );
      assert.deepEqual(again.calls, [], 'no download, no extraction, no docker load');
      assert.deepEqual(await entries(stagingOf(home)), [stagedFolder], 'only the staged release is kept');
      const installed = await upgrade(home, {});
      assert.equal(installed.result.status, 'success', JSON.stringify(installed.result));
      assert.deepEqual(await entries(stagingOf(home)), [], 'installed: no extraction is kept');
    }));

  const stagedRecord = async (home: string) => {
    const { config, file } = await loadConfig(home);
    const store = openStore(homePaths(home, config, file).dbFile);
    try {
      return readStaged(store);
    } finally {
      store.close();
    }
  };

  /** Fake collaborators that note which folders cache/staging holds when an extraction starts. */
  const watchingStage = (home: string) => {
    const calls: string[] = [];
    const collaborators = fakeCollaborators(path.join(home, 'docker'), { to: '1.1.0' }, calls);
    const stage = collaborators.packages.stage;
    let seen: string[] = [];
    collaborators.packages.stage = async (...args) => {
      seen = await entries(stagingOf(home));
      return stage(...args);
    };
    return { calls, collaborators, onDisk: () => seen };
  };

  test('an install uses the extraction made at pre-staging: the package is verified again, nothing is extracted again', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      assert.equal((await upgrade(home, {}, { downloadOnly: true })).result.status, 'staged');
      const staged = await stagedRecord(home);
      assert.ok(staged?.tree && staged.stagedRoot, 'the extraction is recorded with its fingerprint');
      const installed = await upgrade(home, {});
      assert.equal(installed.result.status, 'success', JSON.stringify(installed.result));
      assert.deepEqual(
        installed.calls.slice(0, 3),
        ['download', 'stop', 'backup'],
        'the package found again and verified; no extraction',
      );
      assert.ok(installed.calls.includes('apply') && !installed.calls.includes('stage'));
      assert.ok(
        installed.events.some(
          (event) => event.type === 'log' && /extraction made when the release was staged/.test(event.message),
        ),
      );
      assert.equal(await stagedRecord(home), undefined);
      assert.deepEqual(await entries(stagingOf(home)), []);
    }));

  test('a staged extraction that changed since is removed and extracted again: one extraction on disk at a time', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      assert.equal((await upgrade(home, {}, { downloadOnly: true })).result.status, 'staged');
      const staged = await stagedRecord(home);
      await writeFile(path.join(staged!.stagedRoot!, 'stray'), 'left by hand');
      const { calls, collaborators, onDisk } = watchingStage(home);
      const installed = await upgrade(home, {}, { collaborators });
      assert.equal(installed.result.status, 'success', JSON.stringify(installed.result));
      assert.ok(calls.includes('stage'), 'extracted again');
      assert.equal(onDisk().length, 1, 'only the folder being extracted into');
      assert.ok(
        !onDisk().includes(path.basename(path.dirname(staged!.stagedRoot!))),
        'the changed extraction was removed before extracting',
      );
    }));

  test('a record staged before extractions were reused (no fingerprint): the install removes it before extracting, as it did then', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      assert.equal((await upgrade(home, {}, { downloadOnly: true })).result.status, 'staged');
      const { config, file } = await loadConfig(home);
      const store = openStore(homePaths(home, config, file).dbFile);
      try {
        const { tree: _tree, stagingDir: _dir, ...legacy } = readStaged(store)!;
        store.kv.set('staged', legacy);
      } finally {
        store.close();
      }
      const { calls, collaborators, onDisk } = watchingStage(home);
      const installed = await upgrade(home, {}, { collaborators });
      assert.equal(installed.result.status, 'success', JSON.stringify(installed.result));
      assert.ok(calls.includes('stage'), 'a legacy extraction is never reused');
      assert.equal(onDisk().length, 1, 'only the folder being extracted into');
    }));

  test('a staged patch whose base no longer matches the box: the full package extracted over it is not taken for the staged patch', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      server.set(
        '/both.json',
        JSON.stringify({
          version: '1.1.0',
          platforms: { x86_64: { url: 'b.tar.gz', hash: HASH, size: 7 } },
          patch: { x86_64: { url: 'p.tar.gz', hash: 'd'.repeat(64), size: 3, from: ['1.0.0'] } },
        }),
      );
      await withManifestUrl(home, `${server.url}/both.json`);
      let extractions = 0;
      const withMarkedStage = (calls: string[], baseOk: boolean) => {
        const collaborators = fakeCollaborators(path.join(home, 'docker'), { to: '1.1.0' }, calls);
        const stage = collaborators.packages.stage;
        collaborators.packages.stage = async (...args) => {
          const staged = await stage(...args);
          extractions += 1;
          await writeFile(path.join(staged.root, `extraction-${extractions}`), '');
          return { ...staged, patchInfo: { base: { VERSION: null } } };
        };
        collaborators.packages.patchInfo = async () => ({ base: { VERSION: null } });
        collaborators.packages.checkBase = async () =>
          baseOk
            ? { ok: true, mismatches: [] }
            : { ok: false, mismatches: [{ path: 'VERSION', expected: null, actual: 'x' }] };
        return collaborators;
      };
      const staging = await upgrade(home, {}, { downloadOnly: true, collaborators: withMarkedStage([], true) });
      assert.equal(staging.result.status, 'staged', JSON.stringify(staging.result));
      assert.equal((await stagedRecord(home))?.sha256, 'd'.repeat(64), 'the patch is staged');
      // The box's files changed since: the install falls back to the full package, then is declined.
      const calls: string[] = [];
      const declined = await upgrade(
        home,
        {},
        { collaborators: withMarkedStage(calls, false), confirm: async () => false },
      );
      assert.equal(declined.result.status, 'failed', JSON.stringify(declined.result));
      assert.equal(declined.result.status === 'failed' && declined.result.error.code, 'E_CANCELLED');
      assert.ok(calls.includes('stage'), 'the full package was extracted');
      const record = await stagedRecord(home);
      assert.equal(record?.version, '1.1.0', 'still staged');
      if (record?.stagedRoot) {
        assert.deepEqual(
          await entries(record.stagedRoot),
          ['extraction-1'],
          'the record claims only the extraction of its own package',
        );
      }
    }));

  test('a reused extraction that fails before the switch (a corrupt file keeps its size and mtime) is extracted again next time', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      assert.equal((await upgrade(home, {}, { downloadOnly: true })).result.status, 'staged');
      const calls: string[] = [];
      const collaborators = fakeCollaborators(path.join(home, 'docker'), { to: '1.1.0' }, calls);
      collaborators.packages.validatePlan = async () => {
        throw new NuwaxError(ErrorCodes.E_APPLY, 'app/x in the staged package is unreadable');
      };
      const failed = await upgrade(home, {}, { collaborators });
      assert.equal(failed.result.status === 'failed' && failed.result.error.code, 'E_APPLY');
      assert.ok(
        !calls.includes('stage') && !calls.includes('down') && !calls.includes('stop'),
        'the staged extraction was used; nothing stopped',
      );
      const staged = await stagedRecord(home);
      assert.equal(staged?.version, '1.1.0', 'still staged');
      assert.equal(staged?.stagedRoot, null, 'its extraction is not trusted again');
      const again = await upgrade(home, {});
      assert.equal(again.result.status, 'success', JSON.stringify(again.result));
      assert.ok(again.calls.includes('stage'), 'extracted again from the package');
    }));

  test('a switch that rolls back after the apply keeps the release staged but not its extraction; the next pre-stage extracts again', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      assert.equal((await upgrade(home, {}, { downloadOnly: true })).result.status, 'staged');
      const failed = await upgrade(home, { unhealthy: 'critical' });
      assert.equal(failed.result.status, 'failed', JSON.stringify(failed.result));
      assert.ok(failed.calls.includes('apply') && !failed.calls.includes('stage'), 'the staged extraction was applied');
      const staged = await stagedRecord(home);
      assert.equal(staged?.version, '1.1.0', 'still staged');
      assert.equal(staged?.stagedRoot, null, 'files were moved out of its extraction: it is not reused');
      const again = await upgrade(home, {}, { downloadOnly: true });
      assert.equal(again.result.status, 'staged');
      assert.ok(again.calls.includes('stage'));
      assert.equal((await entries(stagingOf(home))).length, 1, 'the consumed extraction is gone');
    }));

  test('--force-full with a patch staged: the staged extraction is removed before the full package is extracted', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      assert.equal((await upgrade(home, {}, { downloadOnly: true })).result.status, 'staged');
      server.set(
        '/both.json',
        JSON.stringify({
          version: '1.1.0',
          platforms: { x86_64: { url: 'b.tar.gz', hash: HASH, size: 7 } },
          patch: { x86_64: { url: 'p.tar.gz', hash: 'd'.repeat(64), size: 3, from: ['1.0.0'] } },
        }),
      );
      await withManifestUrl(home, `${server.url}/both.json`);
      const patchStaged = await upgrade(home, {}, { downloadOnly: true });
      assert.equal(patchStaged.result.status, 'staged', JSON.stringify(patchStaged.result));
      const patchRoot = (await stagedRecord(home))!.stagedRoot!;
      assert.equal((await stagedRecord(home))?.sha256, 'd'.repeat(64), 'the patch is staged');
      const { collaborators, onDisk } = watchingStage(home);
      const full = await upgrade(home, {}, { collaborators, forceFull: true });
      assert.equal(full.result.status, 'success', JSON.stringify(full.result));
      assert.equal(onDisk().length, 1, 'no second extraction beside the staged one');
      assert.ok(!onDisk().includes(path.basename(path.dirname(patchRoot))));
    }));

  test('a server that answers with an error (HTTP 404 behind a proxy) falls back to the staged release, and says so', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      assert.equal((await upgrade(home, {}, { downloadOnly: true })).result.status, 'staged');
      await withManifestUrl(home, `${server.url}/gone.json`);
      const box = await upgrade(home, {});
      assert.equal(box.result.status, 'success', JSON.stringify(box.result));
      assert.ok(
        box.events.some(
          (event) =>
            event.type === 'log' &&
            event.level === 'warn' &&
            /release server cannot be used.*HTTP 404.*installing the staged release/.test(event.message),
        ),
      );
    }));

  test('falling back to the staged release logs one warning line with the code; the stack only at debug', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      assert.equal((await upgrade(home, {}, { downloadOnly: true })).result.status, 'staged');
      await withManifestUrl(home, `${server.url}/gone.json`);
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk, _encoding, done) {
          lines.push(...String(chunk).split('\n').filter(Boolean));
          done();
        },
      });
      const box = await upgrade(home, {}, { logger: pino({ level: 'info' }, sink) });
      assert.equal(box.result.status, 'success', JSON.stringify(box.result));
      const warnings = lines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 40);
      const fallback = warnings.filter((entry) => /using the staged release/.test(entry.msg));
      assert.equal(fallback.length, 1, JSON.stringify(warnings));
      assert.equal(fallback[0].code, 'E_HTTP');
      assert.match(fallback[0].msg, /^cannot use the release server \(E_HTTP\); using the staged release: .*404/);
      assert.equal(fallback[0].err, undefined, 'no stack at the default level');
      assert.ok(!lines.some((line) => line.includes('"stack"') && line.includes('release server')));
    }));

  test('the plan event lists the steps of the table, the switch ones too, and a download-only plan only the prepare ones', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      const staged = await upgrade(home, {}, { downloadOnly: true });
      const stagedPlan = staged.events.find((event) => event.type === 'plan');
      assert.deepEqual(stagedPlan?.type === 'plan' && stagedPlan.steps?.map((step) => step.name), [
        'checking',
        'downloading',
        'verifying',
        'staging',
        'rebuilding_images',
        'loading_images',
      ]);
      const box = await upgrade(home, {});
      const plan = box.events.find((event) => event.type === 'plan');
      assert.deepEqual(
        plan?.type === 'plan' && plan.steps?.map((step) => step.name),
        listSteps().map((step) => step.name),
      );
    }));

  test('a staged release the server no longer offers (withdrawn) is forgotten: a later outage installs nothing', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      assert.equal((await upgrade(home, {}, { downloadOnly: true })).result.status, 'staged');
      server.set(
        '/withdrawn.json',
        JSON.stringify({ version: '1.0.0', platforms: { x86_64: { url: 'a.tar.gz', hash: HASH, size: 7 } } }),
      );
      await withManifestUrl(home, `${server.url}/withdrawn.json`);
      const answered = await upgrade(home, {});
      assert.equal(answered.result.status, 'up_to_date', JSON.stringify(answered.result));
      assert.deepEqual(await entries(stagingOf(home)), [], 'its extraction is removed');
      await withManifestUrl(home, 'http://127.0.0.1:9/manifest.json');
      const outage = await upgrade(home, {});
      assert.equal(outage.result.status, 'failed');
      assert.equal(outage.result.status === 'failed' && outage.result.error.code, 'E_NETWORK');
      assert.deepEqual(outage.calls, [], 'nothing installed');
    }));

  test('a box failure is not a server failure: no fallback on E_CONFIG with a server configured', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      assert.equal((await upgrade(home, {}, { downloadOnly: true })).result.status, 'staged');
      // The server answers; the box's own key setting is broken.
      await withManifestUrl(home, `${server.url}/manifest.json`, '[security]\npublic_keys = ["not-a-key"]\n');
      const box = await upgrade(home, {});
      assert.equal(box.result.status === 'failed' && box.result.error.code, 'E_CONFIG');
      assert.deepEqual(box.calls, []);
    }));

  test('a release staged unsigned is refused once public keys are configured, a signed one is accepted', () =>
    withTempDir('orch', async (home) => {
      await setUp(home);
      assert.equal((await upgrade(home, {}, { downloadOnly: true })).result.status, 'staged');
      const { publicKey, privateKeyPem } = generateKeyPair();
      await withManifestUrl(home, 'http://127.0.0.1:9/manifest.json', `[security]\npublic_keys = ["${publicKey}"]\n`);
      const refused = await upgrade(home, {});
      assert.equal(refused.result.status, 'failed');
      // The error stays the server's (the daemon backs off on it) and says why the staged release is refused.
      assert.equal(refused.result.status === 'failed' && refused.result.error.code, 'E_NETWORK');
      assert.match(
        refused.result.status === 'failed' ? refused.result.error.message : '',
        /the staged release 1\.1\.0 cannot be installed either: .*no signature/,
      );
      assert.deepEqual(refused.calls, [], 'nothing on the box changed');
      // Staged from a signed manifest: the signature is kept and verifies again offline.
      const manifest = Buffer.from(
        JSON.stringify({ version: '1.1.0', platforms: { x86_64: { url: 'b.tar.gz', hash: HASH, size: 7 } } }),
      );
      server.set('/signed.json', manifest);
      server.set('/signed.json.sig', signBytes(manifest, loadPrivateKey(privateKeyPem)));
      await withManifestUrl(home, `${server.url}/signed.json`, `[security]\npublic_keys = ["${publicKey}"]\n`);
      assert.equal((await upgrade(home, {}, { downloadOnly: true })).result.status, 'staged');
      await withManifestUrl(home, 'http://127.0.0.1:9/manifest.json', `[security]\npublic_keys = ["${publicKey}"]\n`);
      const box = await upgrade(home, {});
      assert.equal(box.result.status, 'success', JSON.stringify(box.result));
    }));
});

describe('crash recovery (SPEC 9)', () => {
  /** Runs an upgrade whose process "dies" at `step`: the step's work never returns, as after kill -9. */
  async function interruptAt(home: string, step: string): Promise<void> {
    const { config, file } = await loadConfig(home);
    const paths = homePaths(home, config, file);
    const store = openStore(paths.dbFile);
    const calls: string[] = [];
    const collaborators = fakeCollaborators(paths.dockerDir, { to: '1.1.0' }, calls);
    const die = new Promise<never>(() => undefined);
    const kill =
      <T extends unknown[], R>(name: string, work: (...args: T) => Promise<R>) =>
      async (...args: T) => {
        const value = await work(...args);
        if (name === step)
          await Promise.race([die, new Promise((_, reject) => setTimeout(() => reject(new Error('killed')), 50))]);
        return value;
      };
    collaborators.packages.apply = kill('applying', collaborators.packages.apply);
    collaborators.runtime.health = kill('health_check', collaborators.runtime.health);
    collaborators.backups.create = kill('backing_up', collaborators.backups.create);
    // Simulate the death: let the step fail with a non-error "kill", then forge the journal as a crash leaves it.
    await runUpgrade({
      config,
      paths,
      store,
      collaborators,
      clientVersion: '0.1.0',
      logger: silentLogger,
      hostArch: 'x64',
      trigger: 'manual',
      startedBy: 'test',
    }).catch(() => undefined);
    const [row] = store.upgrades.list(1);
    store.db
      .prepare(`UPDATE upgrades SET status = 'running', result = NULL, finished_at = NULL WHERE id = ?`)
      .run(row!.id);
    store.db
      .prepare(`UPDATE journal SET status = 'running', finished_at = NULL WHERE upgrade_id = ? AND step = ?`)
      .run(row!.id, step);
    store.db.prepare(`DELETE FROM journal WHERE upgrade_id = ? AND step = 'rolling_back'`).run(row!.id);
    store.close();
  }

  async function recover(home: string) {
    const { config, file } = await loadConfig(home);
    const paths = homePaths(home, config, file);
    const store = openStore(paths.dbFile);
    const calls: string[] = [];
    try {
      const result = await recoverUnfinished({
        config,
        paths,
        store,
        collaborators: fakeCollaborators(paths.dockerDir, { to: '1.1.0' }, calls),
        logger: silentLogger,
      });
      return { result, calls, store: openStore(paths.dbFile) };
    } finally {
      store.close();
    }
  }

  test('interrupted during backing_up: abandoned, old services started, nothing changed', () =>
    withTempDir('recover', async (home) => {
      await setUp(home);
      await interruptAt(home, 'backing_up');
      const { result, calls, store } = await recover(home);
      assert.equal(result?.status, 'failed');
      assert.ok(result && 'changed' in result && result.changed === false);
      assert.ok(calls.includes('up:1.0.0'));
      assert.equal(store.upgrades.list(1)[0]!.status, 'abandoned');
      store.close();
    }));

  test('interrupted during applying: rolled back to the old version', () =>
    withTempDir('recover', async (home) => {
      await setUp(home);
      await interruptAt(home, 'applying');
      const { result, calls, store } = await recover(home);
      assert.equal(result?.status, 'failed');
      assert.ok(result && 'recovered' in result && result.recovered);
      assert.ok(calls.includes('undo') && calls.includes('restore'));
      assert.equal(await readFile(path.join(home, 'docker', 'VERSION'), 'utf8'), '1.0.0');
      assert.equal(store.upgrades.findUnfinished(), undefined);
      store.close();
    }));

  test('interrupted after health passed: committed', () =>
    withTempDir('recover', async (home) => {
      await setUp(home);
      await interruptAt(home, 'health_check');
      // The health step itself was done before the kill in this forged journal.
      const { config, file } = await loadConfig(home);
      const store0 = openStore(homePaths(home, config, file).dbFile);
      store0.db.prepare(`UPDATE journal SET status = 'done' WHERE step = 'health_check'`).run();
      store0.close();
      const { result, store } = await recover(home);
      assert.equal(result?.status, 'success', JSON.stringify(result));
      assert.equal(store.deployment.get().version, '1.1.0');
      assert.match(await readFile(path.join(home, 'config.toml'), 'utf8'), /docker_service = "1\.1\.0"/);
      store.close();
    }));

  test('a recovery attempted three times ends terminally with recovered:false and a bundle', () =>
    withTempDir('recover', async (home) => {
      await setUp(home);
      await interruptAt(home, 'applying');
      const { config, file } = await loadConfig(home);
      const store0 = openStore(homePaths(home, config, file).dbFile);
      store0.db.prepare('UPDATE upgrades SET recovery_attempts = 3').run();
      store0.close();
      const { result, store } = await recover(home);
      assert.ok(result && 'recovered' in result && result.recovered === false);
      assert.equal(exitCodeFor(result!), 5);
      assert.equal(store.upgrades.findUnfinished(), undefined);
      store.close();
    }));

  test('nothing unfinished: recovery is a no-op', () =>
    withTempDir('recover', async (home) => {
      await setUp(home);
      const { result, store } = await recover(home);
      assert.equal(result, null);
      store.close();
    }));
});
