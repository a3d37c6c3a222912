import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CLOCK_SKEW_LIMIT_MS,
  type CheckId,
  type CheckStatus,
  DISK_MARGIN,
  type DoctorFacts,
  exitCodeOf,
  judgeFacts,
  type PortProbe,
  type Verdict,
  verdictOf,
  withRepair,
} from '../../src/doctor/index.js';
import type { LiveService } from '../../src/services/index.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const NOW = new Date('2026-11-25T10:00:00Z');

/** A box that is ready in every respect; each row changes one or two facts. */
function readyFacts(): DoctorFacts {
  return {
    docker: { reachable: true, version: '27.5.1' },
    compose: { found: true, command: 'docker compose', kind: 'v2', version: '2.32.4' },
    composeFile: { path: '/box/docker/docker-compose.yml', state: 'valid' },
    disk: {
      areas: [
        { directory: '/box', device: 1, free: 50 * GiB, needs: [] },
        { directory: '/box/cache/downloads', device: 1, free: 50 * GiB, needs: [{ what: 'download', bytes: 1 * GiB }] },
        {
          directory: '/box/cache/staging',
          device: 1,
          free: 50 * GiB,
          needs: [{ what: 'extracted release', bytes: 2 * GiB }],
        },
        { directory: '/box/backups', device: 1, free: 50 * GiB, needs: [{ what: 'backup', bytes: 3 * GiB }] },
      ],
      release: { version: '1.4.0.2', packageSize: 1 * GiB },
      errors: [],
    },
    home: {
      directories: [
        { path: '/box', error: null },
        { path: '/box/data', error: null },
      ],
    },
    server: { url: 'https://releases.example/manifest.json', error: null },
    manifest: {
      state: 'valid',
      version: '1.4.0.2',
      signed: true,
      keys: 1,
      current: '1.4.0.1',
      strategy: 'patch',
      packageSize: 1 * GiB,
    },
    clock: { local: NOW, server: new Date(NOW.getTime() - 2000) },
    ports: {
      state: 'checked',
      probes: [
        { service: 'web', hostIp: null, port: 8080, protocol: 'tcp', result: 'free' },
        { service: 'web', hostIp: '127.0.0.1', port: 8443, protocol: 'tcp', result: 'in_use' },
      ],
      ours: ['8443/tcp'],
      hostNetwork: [],
      unreadable: [],
    },
    services: { seen: true, project: 'box', services: [live('web', 'healthy'), live('worker', 'running')] },
  };
}

/** A service line as src/services describes it. */
function live(service: string, state: LiveService['state'], extra: Partial<LiveService> = {}): LiveService {
  return {
    service,
    container: `${service}-id`,
    state,
    critical: true,
    down: !['healthy', 'running', 'starting'].includes(state),
    exit_code: state === 'exited' ? 137 : null,
    detail: state === 'exited' ? 'exited (code 137)' : state,
    ...extra,
  };
}

interface Row {
  name: string;
  /** Facts replaced whole. */
  set?: Partial<DoctorFacts>;
  /** Facts changed in place, for a field deep inside one. */
  change?: (facts: DoctorFacts) => void;
  verdict: Verdict;
  /** The statuses that differ from `ok`; every other check must be `ok`. */
  statuses?: Partial<Record<CheckId, CheckStatus>>;
  /** A check's message must match. */
  message?: [CheckId, RegExp];
}

const COMPOSE_FILE = '/box/docker/docker-compose.yml';
const NO_SERVER = {
  code: 'E_CONFIG',
  message: 'No release server configured: set [server] manifest_url or base_url in config.toml',
};

const oneDevice = (free: number) => (facts: DoctorFacts) => {
  for (const area of facts.disk.areas) area.free = free;
};

/** The release server's clock `offsetMs` behind ours. */
const serverBehind = (offsetMs: number): Partial<DoctorFacts> => ({
  clock: { local: NOW, server: new Date(NOW.getTime() - offsetMs) },
});

const probed = (...probes: PortProbe[]): Partial<DoctorFacts> => ({
  ports: { state: 'checked', probes, ours: ['8443/tcp'], hostNetwork: [], unreadable: [] },
});

const serviceRows: Row[] = [
  {
    name: 'a critical service exited: NOT_READY naming it, with a hint',
    set: { services: { seen: true, project: 'box', services: [live('web', 'exited'), live('worker', 'running')] } },
    verdict: 'NOT_READY',
    statuses: { services: 'fail' },
    message: ['services', /^critical service down: web exited \(code 137\)$/],
  },
  {
    name: 'a critical service unhealthy: NOT_READY',
    set: { services: { seen: true, project: 'box', services: [live('web', 'unhealthy')] } },
    verdict: 'NOT_READY',
    statuses: { services: 'fail' },
  },
  {
    name: 'a non-critical service exited: READY_WITH_WARNINGS',
    set: {
      services: {
        seen: true,
        project: 'box',
        services: [live('web', 'healthy'), live('worker', 'exited', { critical: false })],
      },
    },
    verdict: 'READY_WITH_WARNINGS',
    statuses: { services: 'warn' },
    message: ['services', /^non-critical service down: worker exited/],
  },
  {
    name: 'a one-shot that finished is not down',
    set: {
      services: {
        seen: true,
        project: 'box',
        services: [live('migrate', 'exited', { down: false, detail: 'exited (code 0, a finished one-shot)' })],
      },
    },
    verdict: 'READY',
  },
  {
    name: 'no container yet (nothing started): ok',
    set: { services: { seen: true, project: 'box', services: [] } },
    verdict: 'READY',
    message: ['services', /no container of project box exists/],
  },
  {
    name: 'the services cannot be seen: a warning',
    set: { services: { seen: false, project: null, reason: 'the Docker engine is not reachable' } },
    verdict: 'READY_WITH_WARNINGS',
    statuses: { services: 'warn' },
  },
];

const rows: Row[] = [
  ...serviceRows,
  {
    name: 'everything ready',
    verdict: 'READY',
    message: ['ports', /2 published ports: 1 free, 1 held by our own services/],
  },
  {
    name: 'Docker not reachable',
    set: { docker: { reachable: false, reason: 'permission denied on /var/run/docker.sock' } },
    verdict: 'NOT_READY',
    statuses: { docker: 'fail' },
    message: ['docker', /permission denied/],
  },
  {
    name: 'no compose at all',
    set: { compose: { found: false, reason: 'Neither `docker compose` (v2) nor `docker-compose` (v1) is available' } },
    verdict: 'NOT_READY',
    statuses: { compose: 'fail' },
  },
  {
    name: 'compose v1 is fine and named',
    set: { compose: { found: true, command: 'docker-compose', kind: 'v1', version: '1.29.2' } },
    verdict: 'READY',
    message: ['compose', /docker-compose 1\.29\.2 \(v1\)/],
  },
  {
    name: 'compose v2 is named a plugin',
    verdict: 'READY',
    message: ['compose', /docker compose 2\.32\.4 \(v2 plugin\)/],
  },
  {
    name: 'invalid compose file',
    set: { composeFile: { path: COMPOSE_FILE, state: 'invalid', reason: 'services.web.ports is invalid' } },
    verdict: 'NOT_READY',
    statuses: { compose_file: 'fail' },
  },
  {
    name: 'no compose file yet (first install)',
    set: { composeFile: { path: COMPOSE_FILE, state: 'missing' } },
    verdict: 'READY_WITH_WARNINGS',
    statuses: { compose_file: 'warn' },
    message: ['compose_file', /full release/],
  },
  {
    name: 'compose file not checkable',
    set: { composeFile: { path: COMPOSE_FILE, state: 'unchecked', reason: 'compose is not available' } },
    verdict: 'READY_WITH_WARNINGS',
    statuses: { compose_file: 'warn' },
  },
  // 6 GiB + margin are needed on the one filesystem.
  { name: 'disk: plenty', change: oneDevice(6 * GiB * 2 + 2 * DISK_MARGIN), verdict: 'READY' },
  {
    name: 'disk: enough but tight',
    change: oneDevice(6 * GiB * 2 + 2 * DISK_MARGIN - 1),
    verdict: 'READY_WITH_WARNINGS',
    statuses: { disk: 'warn' },
    message: ['disk', /tight/],
  },
  {
    name: 'disk: exactly enough is tight, not a failure',
    change: oneDevice(6 * GiB + DISK_MARGIN),
    verdict: 'READY_WITH_WARNINGS',
    statuses: { disk: 'warn' },
  },
  {
    name: 'disk: one byte short',
    change: oneDevice(6 * GiB + DISK_MARGIN - 1),
    verdict: 'NOT_READY',
    statuses: { disk: 'fail' },
    message: ['disk', /not enough space: .* free in \/box; about 6\.3 GiB needed/],
  },
  {
    name: 'disk: backups on their own filesystem are judged on their own',
    change: (facts) => {
      oneDevice(100 * GiB)(facts);
      Object.assign(facts.disk.areas.find((area) => area.directory === '/box/backups')!, { device: 2, free: 2 * GiB });
    },
    verdict: 'NOT_READY',
    statuses: { disk: 'fail' },
    message: ['disk', /free in \/box\/backups; about 3\.3 GiB needed \(backup 3\.0 GiB/],
  },
  {
    name: 'disk: a package of unknown size warns',
    change: (facts) => Object.assign(facts.disk, { release: { version: '1.4.0.2', packageSize: null } }),
    verdict: 'READY_WITH_WARNINGS',
    statuses: { disk: 'warn' },
    message: ['disk', /no size for 1\.4\.0\.2/],
  },
  {
    name: 'disk: nothing offered still budgets the backup',
    change: (facts) => Object.assign(facts.disk, { release: 'none' }),
    verdict: 'READY',
    message: ['disk', /no newer release offered/],
  },
  {
    name: 'disk: the next release unknown (server down) budgets the backup',
    change: (facts) => Object.assign(facts.disk, { release: 'unknown' }),
    verdict: 'READY',
    message: ['disk', /next release is not known/],
  },
  // Facts that could not be gathered (gather.ts turns the error into the fact: path and code).
  {
    name: 'disk: a folder the backup estimate cannot read warns, naming it and the code',
    change: (facts) =>
      Object.assign(facts.disk, {
        errors: [{ what: 'estimate the backup', path: '/box/docker/pgdata', code: 'EACCES' }],
      }),
    verdict: 'READY_WITH_WARNINGS',
    statuses: { disk: 'warn' },
    message: ['disk', /^cannot estimate the backup: \/box\/docker\/pgdata \(EACCES\); so far .* free in \/box/],
  },
  {
    name: 'disk: nothing could be measured still gives one warning line',
    set: {
      disk: { areas: [], release: 'unknown', errors: [{ what: 'measure the free space', path: '/box', code: 'EIO' }] },
    },
    verdict: 'READY_WITH_WARNINGS',
    statuses: { disk: 'warn' },
    message: ['disk', /^cannot measure the free space: \/box \(EIO\)$/],
  },
  {
    name: 'disk: too little space still fails when something else could not be read',
    change: (facts) => {
      oneDevice(1 * GiB)(facts);
      Object.assign(facts.disk, {
        errors: [{ what: 'estimate the backup', path: '/box/docker/pgdata', code: 'EACCES' }],
      });
    },
    verdict: 'NOT_READY',
    statuses: { disk: 'fail' },
    message: ['disk', /^not enough space: .*; also cannot estimate the backup: \/box\/docker\/pgdata \(EACCES\)$/],
  },
  {
    name: 'a compose file that is a folder fails, naming it and EISDIR',
    set: { composeFile: { path: COMPOSE_FILE, state: 'unreadable', code: 'EISDIR' } },
    verdict: 'NOT_READY',
    statuses: { compose_file: 'fail' },
    message: ['compose_file', /^\/box\/docker\/docker-compose\.yml cannot be read \(EISDIR\)$/],
  },
  {
    name: 'a compose file this user cannot read fails, naming EACCES',
    set: { composeFile: { path: COMPOSE_FILE, state: 'unreadable', code: 'EACCES' } },
    verdict: 'NOT_READY',
    statuses: { compose_file: 'fail' },
    message: ['compose_file', /\(EACCES\)/],
  },
  {
    name: 'a port probe that failed with an unmapped code warns, naming the port and the code',
    set: probed({ service: 'web', hostIp: '127.0.0.1', port: 8080, protocol: 'tcp', result: 'error', error: 'EINVAL' }),
    verdict: 'READY_WITH_WARNINGS',
    statuses: { ports: 'warn' },
    message: ['ports', /127\.0\.0\.1:8080\/tcp \(web\): the probe failed \(EINVAL\)/],
  },
  {
    name: 'home not writable',
    set: {
      home: {
        directories: [
          { path: '/box', error: null },
          { path: '/box/data', error: 'EACCES' },
        ],
      },
    },
    verdict: 'NOT_READY',
    statuses: { home: 'fail' },
    message: ['home', /\/box\/data \(EACCES\)/],
  },
  {
    name: 'server down',
    set: {
      server: {
        url: 'http://127.0.0.1:9/manifest.json',
        error: { code: 'E_NETWORK', message: 'Cannot reach the release server at http://127.0.0.1:9 (ECONNREFUSED)' },
      },
      manifest: { state: 'unchecked', reason: 'the release server did not answer' },
      clock: { local: NOW, server: null },
    },
    verdict: 'NOT_READY',
    statuses: { server: 'fail', manifest: 'warn' },
  },
  {
    name: 'no server configured',
    set: { server: { url: null, error: { code: 'E_CONFIG', message: 'No release server configured' } } },
    verdict: 'NOT_READY',
    statuses: { server: 'fail' },
    message: ['server', /No release server/],
  },
  {
    name: 'no server configured and nothing staged is NOT_READY',
    set: {
      server: { url: null, error: NO_SERVER },
      manifest: { state: 'unchecked', reason: 'no release server configured' },
      clock: { local: NOW, server: null },
    },
    verdict: 'NOT_READY',
    statuses: { server: 'fail', manifest: 'warn' },
    message: ['server', /No release server configured/],
  },
  {
    name: 'no server configured but a release staged by import (air-gapped box): a warning naming the staged version',
    set: {
      server: { url: null, error: NO_SERVER, staged: '1.4.0.2' },
      manifest: { state: 'unchecked', reason: 'no release server configured' },
      clock: { local: NOW, server: null },
    },
    verdict: 'READY_WITH_WARNINGS',
    statuses: { server: 'warn', manifest: 'warn' },
    message: ['server', /^no release server configured: the next upgrade installs the staged release 1\.4\.0\.2$/],
  },
  {
    name: 'a configured server that is down with a release staged: a warning (the upgrade installs the staged release)',
    set: {
      server: {
        url: 'http://127.0.0.1:9/manifest.json',
        error: { code: 'E_NETWORK', message: 'Cannot reach the release server' },
        staged: '1.4.0.2',
      },
      manifest: { state: 'unchecked', reason: 'the release server did not answer' },
      clock: { local: NOW, server: null },
    },
    verdict: 'READY_WITH_WARNINGS',
    statuses: { server: 'warn', manifest: 'warn' },
    message: ['server', /^Cannot reach the release server; the next upgrade installs the staged release 1\.4\.0\.2$/],
  },
  {
    name: 'a configured server that is down with nothing staged is NOT_READY',
    set: {
      server: {
        url: 'http://127.0.0.1:9/manifest.json',
        error: { code: 'E_NETWORK', message: 'Cannot reach the release server' },
      },
    },
    verdict: 'NOT_READY',
    statuses: { server: 'fail' },
  },
  {
    name: 'unsigned manifest without keys warns',
    change: (facts) => Object.assign(facts.manifest, { signed: false, keys: 0 }),
    verdict: 'READY_WITH_WARNINGS',
    statuses: { manifest: 'warn' },
    message: ['manifest', /no \[security\] public_keys/],
  },
  {
    name: 'signed with one of two keys',
    change: (facts) => Object.assign(facts.manifest, { keys: 2 }),
    verdict: 'READY',
    message: ['manifest', /one of 2 configured keys/],
  },
  {
    name: 'tampered signature',
    set: {
      manifest: { state: 'invalid', error: { code: 'E_SIGNATURE', message: 'The manifest signature does not verify' } },
    },
    verdict: 'NOT_READY',
    statuses: { manifest: 'fail' },
    message: ['manifest', /^E_SIGNATURE: /],
  },
  {
    name: 'expired manifest',
    set: { manifest: { state: 'invalid', error: { code: 'E_MANIFEST_EXPIRED', message: 'The manifest expired' } } },
    verdict: 'NOT_READY',
    statuses: { manifest: 'fail' },
  },
  { name: 'clock 4 min off is fine', set: serverBehind(4 * 60_000), verdict: 'READY' },
  {
    name: 'clock 6 min ahead warns',
    set: serverBehind(6 * 60_000),
    verdict: 'READY_WITH_WARNINGS',
    statuses: { clock: 'warn' },
    message: ['clock', /6 min ahead of the release server/],
  },
  {
    name: 'clock 3 h behind warns',
    set: serverBehind(-3 * 3600_000),
    verdict: 'READY_WITH_WARNINGS',
    statuses: { clock: 'warn' },
    message: ['clock', /3 h behind/],
  },
  {
    name: 'clock in 1970 fails',
    set: { clock: { local: new Date(0), server: NOW } },
    verdict: 'NOT_READY',
    statuses: { clock: 'fail' },
  },
  {
    name: 'clock in 2023 fails even with no server to compare',
    set: { clock: { local: new Date('2023-06-01T00:00:00Z'), server: null } },
    verdict: 'NOT_READY',
    statuses: { clock: 'fail' },
  },
  {
    name: 'clock not comparable is fine',
    set: { clock: { local: NOW, server: null } },
    verdict: 'READY',
    message: ['clock', /not compared/],
  },
  {
    name: 'a port held by another process',
    set: probed({ service: 'web', hostIp: null, port: 8080, protocol: 'tcp', result: 'in_use' }),
    verdict: 'NOT_READY',
    statuses: { ports: 'fail' },
    message: ['ports', /held by another process: 8080\/tcp \(web\)/],
  },
  {
    name: 'a held port when Docker cannot say whose',
    set: {
      ports: {
        state: 'checked',
        probes: [{ service: 'web', hostIp: null, port: 8443, protocol: 'tcp', result: 'in_use' }],
        ours: null,
        hostNetwork: [],
        unreadable: [],
      },
    },
    verdict: 'NOT_READY',
    statuses: { ports: 'fail' },
    message: ['ports', /cannot tell/],
  },
  {
    name: 'the same port number but another protocol is not ours',
    set: probed({ service: 'dns', hostIp: null, port: 8443, protocol: 'udp', result: 'in_use' }),
    verdict: 'NOT_READY',
    statuses: { ports: 'fail' },
  },
  {
    name: 'a host IP that is not on this box',
    set: probed({ service: 'web', hostIp: '10.9.9.9', port: 80, protocol: 'tcp', result: 'no_address' }),
    verdict: 'NOT_READY',
    statuses: { ports: 'fail' },
    message: ['ports', /10\.9\.9\.9:80\/tcp/],
  },
  {
    name: 'a privileged port without root is a warning',
    set: probed({ service: 'web', hostIp: null, port: 80, protocol: 'tcp', result: 'denied' }),
    verdict: 'READY_WITH_WARNINGS',
    statuses: { ports: 'warn' },
    message: ['ports', /needs root/],
  },
  {
    name: 'an sctp port cannot be probed: a warning',
    set: probed({ service: 'sig', hostIp: null, port: 3868, protocol: 'sctp', result: 'unsupported' }),
    verdict: 'READY_WITH_WARNINGS',
    statuses: { ports: 'warn' },
  },
  {
    name: 'host networking is said, not guessed',
    set: { ports: { state: 'checked', probes: [], ours: [], hostNetwork: ['api', 'web'], unreadable: [] } },
    verdict: 'READY',
    message: ['ports', /publishes no ports; host networking for api, web/],
  },
  {
    name: 'an unreadable port entry warns',
    change: (facts) => Object.assign(facts.ports, { unreadable: ['web: a:b:c:d'] }),
    verdict: 'READY_WITH_WARNINGS',
    statuses: { ports: 'warn' },
  },
  {
    name: 'ports of a first install: nothing to check',
    set: { ports: { state: 'unchecked', reason: 'no compose file yet: nothing is published', warn: false } },
    verdict: 'READY',
  },
  {
    name: 'ports of an invalid compose file: not checked',
    set: { ports: { state: 'unchecked', reason: 'the compose file is not valid', warn: true } },
    verdict: 'READY_WITH_WARNINGS',
    statuses: { ports: 'warn' },
  },
  {
    name: 'several failures at once',
    set: {
      docker: { reachable: false, reason: 'Cannot connect to the Docker daemon' },
      manifest: { state: 'invalid', error: { code: 'E_SIGNATURE', message: 'bad' } },
      ...serverBehind(-3600_000),
    },
    verdict: 'NOT_READY',
    statuses: { docker: 'fail', manifest: 'fail', clock: 'warn' },
  },
  {
    name: "the release server is nuwax-cli's default (a nuwax-cli config without [server]): a warning",
    set: { server: { url: 'https://api-version.nuwax.com/api/v1/docker/checkVersion', error: null, isDefault: true } },
    verdict: 'READY_WITH_WARNINGS',
    statuses: { server: 'warn' },
    message: ['server', /nuwax-cli's default release server \(config.toml has no \[server\]\)/],
  },
  {
    name: "nuwax-cli's default server unreachable: still a failure, naming the default",
    set: {
      server: {
        url: 'https://api-version.nuwax.com/api/v1/docker/checkVersion',
        error: { code: 'E_NETWORK', message: 'Cannot reach the release server at https://api-version.nuwax.com' },
        isDefault: true,
      },
    },
    verdict: 'NOT_READY',
    statuses: { server: 'fail' },
    message: ['server', /Cannot reach .*; nuwax-cli's default release server/],
  },
  {
    name: 'allow_unverified on: a warning naming the setting, even with a signed manifest',
    set: { allowUnverified: true },
    verdict: 'READY_WITH_WARNINGS',
    statuses: { manifest: 'warn' },
    message: ['manifest', /\[security\] allow_unverified = true: a package without a SHA-256 installs unverified/],
  },
  {
    name: 'allow_unverified on and a refused manifest: the failure stays',
    set: { allowUnverified: true, manifest: { state: 'invalid', error: { code: 'E_MANIFEST', message: 'bad' } } },
    verdict: 'NOT_READY',
    statuses: { manifest: 'fail' },
  },
];

const IDS: CheckId[] = [
  'docker',
  'compose',
  'compose_file',
  'disk',
  'home',
  'server',
  'manifest',
  'clock',
  'ports',
  'services',
];

describe('doctor judges facts into check lines and a verdict', () => {
  for (const row of rows) {
    test(row.name, () => {
      const facts = { ...readyFacts(), ...row.set };
      row.change?.(facts);
      const report = judgeFacts(facts);
      assert.deepEqual(
        report.checks.map((check) => check.id),
        IDS,
      );
      const statuses = Object.fromEntries(report.checks.map((check) => [check.id, check.status]));
      assert.deepEqual(
        statuses,
        { ...Object.fromEntries(IDS.map((id) => [id, 'ok'])), ...row.statuses },
        JSON.stringify(report.checks, null, 1),
      );
      assert.equal(report.verdict, row.verdict);
      for (const check of report.checks) {
        assert.doesNotMatch(check.message, /\n/, `${check.id}: one line`);
        if (check.status === 'fail')
          assert.ok(check.hint && check.hint.length > 10, `${check.id} fails without a hint`);
      }
      if (row.message)
        assert.match(report.checks.find((check) => check.id === row.message![0])!.message, row.message[1]);
    });
  }
});

describe('the verdict and the exit code', () => {
  const table: Array<[CheckStatus[], Verdict, number]> = [
    [[], 'READY', 0],
    [['ok', 'ok'], 'READY', 0],
    [['ok', 'warn'], 'READY_WITH_WARNINGS', 0],
    [['warn', 'warn'], 'READY_WITH_WARNINGS', 0],
    [['ok', 'fail'], 'NOT_READY', 1],
    [['warn', 'fail', 'ok'], 'NOT_READY', 1],
  ];
  for (const [statuses, verdict, code] of table) {
    test(`${statuses.join(',') || '(none)'} → ${verdict}, exit ${code}`, () => {
      const got = verdictOf(statuses.map((status) => ({ status })));
      assert.equal(got, verdict);
      assert.equal(exitCodeOf(got), code);
    });
  }
});

test('the clock limit is 5 minutes and the disk margin matches the upgrade', () => {
  assert.equal(CLOCK_SKEW_LIMIT_MS, 5 * 60_000);
  assert.equal(DISK_MARGIN, 256 * MiB);
});

describe('a failed check names the repair that fits it', () => {
  const rows: Array<{ id: CheckId; status: 'ok' | 'warn' | 'fail'; repair: string | null }> = [
    { id: 'home', status: 'fail', repair: 'permissions' },
    { id: 'ports', status: 'fail', repair: 'failed-startup' },
    { id: 'ports', status: 'warn', repair: null },
    { id: 'server', status: 'fail', repair: null },
  ];
  for (const row of rows) {
    test(`${row.id} ${row.status}: ${row.repair ?? 'no repair'}`, () => {
      const check = withRepair({ id: row.id, title: row.id, status: row.status, message: 'm', hint: 'do this' });
      if (row.repair === null) assert.equal(check.hint, 'do this');
      else assert.equal(check.hint, `do this; nuwax repair ${row.repair} --dry-run shows what the repair would do`);
    });
  }
});
