import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { describe, test } from 'node:test';
import {
  parseShortPort,
  portsFromComposeJson,
  portsFromComposeYaml,
  portsInDockerPs,
  probePort,
} from '../../src/doctor/index.js';
import { freePort } from '../helpers/docker.js';

// biome-ignore lint/suspicious/noTemplateCurlyInString: compose's own variable syntax, meant literally
const UNRESOLVED = '${WEB_PORT:-8080}';

describe('short port syntax', () => {
  const rows: Array<[string, ReturnType<typeof parseShortPort>]> = [
    ['8080:80', { hostIp: null, ports: [8080], protocol: 'tcp' }],
    ['127.0.0.1:8081:81/udp', { hostIp: '127.0.0.1', ports: [8081], protocol: 'udp' }],
    ['9000-9002:9000-9002', { hostIp: null, ports: [9000, 9001, 9002], protocol: 'tcp' }],
    ['[::1]:6001:6001', { hostIp: '::1', ports: [6001], protocol: 'tcp' }],
    ['0.0.0.0:53:53/UDP', { hostIp: '0.0.0.0', ports: [53], protocol: 'udp' }],
    ['3000', { hostIp: null, ports: [], protocol: 'tcp' }],
    ['127.0.0.1::5000', { hostIp: '127.0.0.1', ports: [], protocol: 'tcp' }],
    [`${UNRESOLVED}:80`, null],
    ['70000:80', null],
    ['1-5000:1-5000', null],
    ['a:b:c:d', null],
  ];
  for (const [spec, expected] of rows) test(`"${spec}"`, () => assert.deepEqual(parseShortPort(spec), expected));
});

/** What docker-compose 1.29 `config` prints for a file mixing both syntaxes (captured on this box). */
const V1_OUTPUT = `services:
  hosty:
    image: busybox
    network_mode: host
    ports:
    - published: 7000
      target: 7000
  web:
    image: busybox
    ports:
    - published: 8080
      target: 80
    - 127.0.0.1:8081:81/udp
    - published: 9000
      target: 9000
    - published: 9001
      target: 9001
    - target: 3000
    - protocol: tcp
      published: 5001
      target: 5000
version: '3.8'
`;

/** compose v2 `config --format json`: long syntax only, published as a string. */
const V2_OUTPUT = JSON.stringify({
  name: 'app',
  services: {
    web: {
      image: 'busybox',
      ports: [
        { mode: 'ingress', target: 80, published: '8080', protocol: 'tcp' },
        { mode: 'ingress', host_ip: '127.0.0.1', target: 81, published: '8081', protocol: 'udp' },
        { mode: 'ingress', target: 3000, protocol: 'tcp' },
        { mode: 'ingress', target: 90, published: '9000-9001', protocol: 'tcp' },
      ],
    },
    agent: { image: 'busybox', network_mode: 'host' },
  },
});

const key = (ports: Array<{ service: string; hostIp: string | null; port: number; protocol: string }>) =>
  ports.map((item) => `${item.service} ${item.hostIp ?? '*'}:${item.port}/${item.protocol}`);

describe('published ports of a compose file', () => {
  test('compose v1 normalised YAML: long and short entries, host networking named', () => {
    const found = portsFromComposeYaml(V1_OUTPUT);
    assert.deepEqual(key(found.ports), [
      'web *:8080/tcp',
      'web 127.0.0.1:8081/udp',
      'web *:9000/tcp',
      'web *:9001/tcp',
      'web *:5001/tcp',
    ]);
    assert.deepEqual(found.hostNetwork, ['hosty']);
    assert.deepEqual(found.unreadable, []);
  });

  test('compose v2 JSON', () => {
    const found = portsFromComposeJson(V2_OUTPUT);
    assert.deepEqual(key(found.ports), [
      'web *:8080/tcp',
      'web 127.0.0.1:8081/udp',
      'web *:9000/tcp',
      'web *:9001/tcp',
    ]);
    assert.deepEqual(found.hostNetwork, ['agent']);
  });

  test('a file as written: comments, quotes, flow lists, flow maps, deeper indentation', () => {
    const text = `# deployment
version: "2.4"   # compose v1 and v2
services:
    "db":
        image: postgres
        ports: ["127.0.0.1:5432:5432", '6432:6432'] # two
    web:
        image: nginx
        environment:
            - PORT=8080
        ports:
            - "80:80"    # http
            - 443:443
            - { target: 9090, published: 19090, protocol: udp }
            -   target: 8125
                published: "18125"
                host_ip: 127.0.0.1
        command: ["sh", "-c", "echo '# not a comment: 1:2'"]
    agent:
        image: agent
        network_mode: "host"
        ports:
            - "9999:9999"
volumes:
    data: {}
`;
    const found = portsFromComposeYaml(text);
    assert.deepEqual(key(found.ports), [
      'db 127.0.0.1:5432/tcp',
      'db *:6432/tcp',
      'web *:80/tcp',
      'web *:443/tcp',
      'web *:19090/udp',
      'web 127.0.0.1:18125/tcp',
    ]);
    assert.deepEqual(found.hostNetwork, ['agent']);
  });

  test('an unresolved variable is reported as unreadable, not guessed', () => {
    const found = portsFromComposeYaml(`services:\n  web:\n    ports:\n      - "${UNRESOLVED}:80"\n      - "81:81"\n`);
    assert.deepEqual(key(found.ports), ['web *:81/tcp']);
    assert.deepEqual(found.unreadable, [`web: ${UNRESOLVED}:80`]);
  });

  test('no services, empty services, a service without ports', () => {
    assert.deepEqual(portsFromComposeYaml('version: "3"\n').ports, []);
    assert.deepEqual(portsFromComposeYaml('services: {}\n').ports, []);
    assert.deepEqual(portsFromComposeYaml('services:\n  job:\n    image: busybox\n').ports, []);
  });

  test('0.0.0.0 and an empty host IP are the same binding', () => {
    const found = portsFromComposeYaml('services:\n  web:\n    ports: ["0.0.0.0:8080:80", "8080:80"]\n');
    assert.deepEqual(key(found.ports), ['web *:8080/tcp']);
  });
});

test('ports our own containers publish, from docker ps', () => {
  const output = '0.0.0.0:8080->80/tcp, :::8080->80/tcp\n127.0.0.1:9000-9002->9000-9002/udp\n\n5432/tcp\n';
  assert.deepEqual(portsInDockerPs(output), ['8080/tcp', '9000/udp', '9001/udp', '9002/udp']);
});

describe('probing a port by binding it', () => {
  const hold = (server: Server, port: number, host: string) =>
    new Promise<void>((resolve) => server.listen(port, host, resolve));

  test('a free TCP port is free; one held on 127.0.0.1 is in use for every address', async () => {
    const port = await freePort();
    assert.equal(await probePort(null, port, 'tcp'), 'free');
    const server = createServer();
    await hold(server, port, '127.0.0.1');
    try {
      assert.equal(await probePort('127.0.0.1', port, 'tcp'), 'in_use');
      assert.equal(await probePort(null, port, 'tcp'), 'in_use');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    assert.equal(await probePort(null, port, 'tcp'), 'free', 'the probe let go of the port');
  });

  test('UDP is probed with UDP', async () => {
    const port = await freePort();
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
    try {
      assert.equal(await probePort('127.0.0.1', port, 'udp'), 'in_use');
      assert.equal(await probePort('127.0.0.1', port, 'tcp'), 'free');
    } finally {
      await new Promise<void>((resolve) => socket.close(resolve));
    }
  });

  test('a host IP that is not on this box, and a protocol that cannot be probed', async () => {
    assert.equal(await probePort('192.0.2.123', await freePort(), 'tcp'), 'no_address');
    assert.equal(await probePort(null, 9, 'sctp'), 'unsupported');
  });
});
