import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  mountsFromComposeJson,
  mountsFromComposeYaml,
  parseUser,
  planRepair,
  type RepairFacts,
  type RepairKind,
} from '../../src/repair/index.js';

function facts(change: Partial<RepairFacts> = {}): RepairFacts {
  return {
    project: 'app',
    services: [{ service: 'web', critical: true, container: 'abc', state: 'running', up: true, missingNetworks: [] }],
    networks: [{ id: 'n1', name: 'app_default' }],
    portHolders: [],
    mounts: [],
    home: [],
    user: { uid: 1000, gid: 1000 },
    root: false,
    ...change,
  };
}

const down = { service: 'web', critical: true, container: 'abc', state: 'exited', up: false, missingNetworks: [] };

const rows: Array<{ name: string; kind: RepairKind; facts: RepairFacts; actions: string[]; finding?: RegExp }> = [
  { name: 'everything runs: nothing to do', kind: 'failed-startup', facts: facts(), actions: [] },
  {
    name: 'a critical service down: stop, start, wait',
    kind: 'failed-startup',
    facts: facts({ services: [down] }),
    actions: ['stop', 'start', 'wait_health'],
    finding: /critical service web is down \(exited\)/,
  },
  {
    name: 'a port held by another process is named',
    kind: 'failed-startup',
    facts: facts({
      services: [down],
      portHolders: [{ service: 'web', port: 8080, protocol: 'tcp', pid: 42, command: 'nginx' }],
    }),
    actions: ['stop', 'start', 'wait_health'],
    finding: /port 8080\/tcp of web is held by pid 42 \(nginx\)/,
  },
  { name: 'networks intact: nothing to do', kind: 'network', facts: facts(), actions: [] },
  {
    name: 'a container on a network that is gone: stop, remove what is left, start, wait',
    kind: 'network',
    facts: facts({ services: [{ ...down, missingNetworks: ['app_backend'] }] }),
    actions: ['stop', 'remove_network', 'start', 'wait_health'],
    finding: /web is attached to the network app_backend, which is gone/,
  },
  {
    name: 'a missing bind source is created with the service user as owner',
    kind: 'volumes',
    facts: facts({
      mounts: [{ service: 'web', source: '/h/docker/data/web', user: { uid: 5, gid: 6 }, protected: true, stat: null }],
    }),
    actions: ['mkdir'],
  },
  {
    name: 'an existing source in data/ with another owner is reported, never changed',
    kind: 'volumes',
    facts: facts({
      mounts: [
        {
          service: 'web',
          source: '/h/docker/data/web',
          user: { uid: 5, gid: 6 },
          protected: true,
          stat: { directory: true, uid: 0, gid: 0, mode: 0o755 },
        },
      ],
    }),
    actions: [],
    finding: /left as it is \(protected path\)/,
  },
  {
    name: 'an existing source outside protected paths is given to the service user',
    kind: 'volumes',
    facts: facts({
      mounts: [
        {
          service: 'web',
          source: '/h/docker/logs',
          user: { uid: 5, gid: 6 },
          protected: false,
          stat: { directory: true, uid: 0, gid: 0, mode: 0o755 },
        },
      ],
    }),
    actions: ['chown'],
  },
  {
    name: 'backups/ too open: back to 0700; another owner without root is only reported',
    kind: 'permissions',
    facts: facts({
      home: [
        {
          path: '/h/backups',
          kind: 'directory',
          mode: 0o700,
          exact: true,
          create: true,
          stat: { uid: 0, gid: 0, mode: 0o755 },
        },
      ],
    }),
    actions: ['chmod'],
    finding: /run nuwax repair permissions as root/,
  },
  {
    name: 'a missing cache folder is created',
    kind: 'permissions',
    facts: facts({
      home: [{ path: '/h/cache', kind: 'directory', mode: 0o700, exact: false, create: true, stat: null }],
    }),
    actions: ['mkdir'],
  },
];

describe('a repair plans from the facts', () => {
  for (const row of rows) {
    test(`${row.kind}: ${row.name}`, () => {
      const plan = planRepair(row.kind, row.facts);
      assert.deepEqual(
        plan.actions.map((action) => action.type),
        row.actions,
      );
      if (row.finding) assert.match(plan.findings.join('\n'), row.finding);
    });
  }
});

describe('bind mounts and users from compose', () => {
  test('compose v1 YAML: short and long entries, named volumes left out', () => {
    const yaml =
      "services:\n  db:\n    image: busybox\n    user: '1001'\n    volumes:\n    - source: /srv/data/db\n      target: /db\n      type: bind\n  web:\n    user: 1000:1000\n    volumes:\n    - /srv/data/web:/data:rw\n    - named:/x:rw\nversion: '2.4'\n";
    assert.deepEqual(mountsFromComposeYaml(yaml), [
      { service: 'db', user: '1001', sources: ['/srv/data/db'] },
      { service: 'web', user: '1000:1000', sources: ['/srv/data/web'] },
    ]);
  });

  test('compose v2 JSON', () => {
    const json = JSON.stringify({
      services: {
        web: {
          user: '7',
          volumes: [
            { type: 'bind', source: '/a', target: '/b' },
            { type: 'volume', source: 'v' },
          ],
        },
      },
    });
    assert.deepEqual(mountsFromComposeJson(json), [{ service: 'web', user: '7', sources: ['/a'] }]);
  });

  test('a numeric user is an owner; a name is not', () => {
    assert.deepEqual(parseUser('1000'), { uid: 1000, gid: 1000 });
    assert.deepEqual(parseUser('1000:50'), { uid: 1000, gid: 50 });
    assert.equal(parseUser('www-data'), null);
    assert.equal(parseUser(null), null);
  });
});
