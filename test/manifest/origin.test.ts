import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { fetchManifest, generateKeyPair, loadPrivateKey, signBytes } from '../../src/manifest/index.js';
import { openStore } from '../../src/state/index.js';
import { runCli, withTempDir } from '../helpers/cli.js';
import { MisbehavingServer } from '../helpers/misbehaving-server.js';
import { ReleaseServer } from '../helpers/release-server.js';

const keys = generateKeyPair();
const HASH = 'c'.repeat(64);
const manifest = Buffer.from(
  JSON.stringify({ version: '2.0.0', packages: { full: { url: 'full.tar.gz', hash: `sha256:${HASH}`, size: 10 } } }),
);

/** A port that refuses connections: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP proxy in front of a server that counts every byte that crosses it, both ways. */
class CountingProxy {
  bytes = 0;
  url = '';
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly target: URL) {}

  async start(): Promise<this> {
    this.server = createServer((client) => {
      const upstream = connect(Number(this.target.port), this.target.hostname);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('data', (chunk: Buffer) => {
          this.bytes += chunk.length;
        });
        socket.on('error', () => socket.destroy());
        socket.on('close', () => this.sockets.delete(socket));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

async function makeHome(home: string, config: string): Promise<void> {
  await writeFile(path.join(home, 'config.toml'), `[versions]\ndocker_service = "1.0.0"\n\n${config}`);
  await mkdir(path.join(home, 'docker'), { recursive: true });
  await writeFile(path.join(home, 'docker', 'docker-compose.yml'), 'services: {}\n');
}

const check = (home: string) => runCli(['--home', home, '--json', 'check']);
type Failure = { status?: string; error?: { code: string; message: string }; offered?: string };

describe('the manifest from a cheap origin and its mirrors', () => {
  const server = new ReleaseServer();
  let proxy: CountingProxy;
  before(async () => {
    await server.start();
    server.set('/stable/manifest.json', manifest);
    server.set('/stable/manifest.json.sig', signBytes(manifest, loadPrivateKey(keys.privateKeyPem)));
    proxy = await new CountingProxy(new URL(server.url)).start();
  });
  after(async () => {
    await proxy.stop();
    await server.stop();
  });

  test('an idle poll is one conditional request: the 304 reuses the signature verified before', () =>
    withTempDir('origin', async (home) => {
      const config =
        `[server]\nmanifest_url = "${proxy.url}/stable/manifest.json"\n\n` +
        `[security]\npublic_keys = ["${keys.publicKey}"]\n`;
      await makeHome(home, config);
      const first = await check(home);
      assert.equal(first.code, 0, first.stderr);
      assert.equal((first.json() as { signed: boolean }).signed, true);
      const requestsBefore = server.requests.length;
      proxy.bytes = 0;
      const idle = await check(home);
      assert.equal(idle.code, 0, idle.stderr);
      assert.equal((idle.json() as { signed: boolean }).signed, true, 'still verified, against today’s keys');
      const made = server.requests.slice(requestsBefore).map((request) => request.url);
      assert.deepEqual(made, ['/stable/manifest.json'], 'no request for the signature');
      assert.equal(server.statuses.at(-1), 304);
      process.stdout.write(`# bytes per idle poll (both directions, all requests): ${proxy.bytes}\n`);
      assert.ok(proxy.bytes < 400, `an idle poll costs ${proxy.bytes} bytes`);
    }));

  test('a key removed from the config is not trusted through the cache: the 304 refetches the .sig', () =>
    withTempDir('origin', async (home) => {
      const url = `${server.url}/stable/manifest.json`;
      await makeHome(home, `[server]\nmanifest_url = "${url}"\n\n[security]\npublic_keys = ["${keys.publicKey}"]\n`);
      assert.equal((await check(home)).code, 0);
      const other = generateKeyPair();
      await makeHome(home, `[server]\nmanifest_url = "${url}"\n\n[security]\npublic_keys = ["${other.publicKey}"]\n`);
      const run = await check(home);
      assert.equal((run.json() as Failure).error?.code, 'E_SIGNATURE');
    }));

  test('with manifest_url refusing connections, check answers from [server] mirrors', async () => {
    const dead = await closedPort();
    await withTempDir('origin', async (home) => {
      const config =
        `[server]\nmanifest_url = "http://127.0.0.1:${dead}/stable/manifest.json"\n` +
        `mirrors = ["http://127.0.0.1:${await closedPort()}/stable/", "${server.url}/stable/manifest.json"]\n\n` +
        `[security]\npublic_keys = ["${keys.publicKey}"]\n`;
      await makeHome(home, config);
      const run = await check(home);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const result = run.json() as { offered: string; signed: boolean; package: { url: string } };
      assert.equal(result.offered, '2.0.0');
      assert.equal(result.signed, true);
      assert.equal(result.package.url, `${server.url}/stable/full.tar.gz`, 'package URLs resolve against the mirror');
    });
  });

  test('failover from two dead manifest URLs to a serving mirror takes well under a second', async () => {
    const deadA = await closedPort();
    const deadB = await closedPort();
    await withTempDir('origin', async (home) => {
      await makeHome(
        home,
        `[server]\nmanifest_url = "http://127.0.0.1:${deadA}/stable/manifest.json"\n` +
          `mirrors = ["http://127.0.0.1:${deadB}/stable/manifest.json", "${server.url}/stable/manifest.json"]\n`,
      );
      const { config } = await loadConfig(home);
      const store = openStore(path.join(home, 'nuwax.db'));
      try {
        const timings: number[] = [];
        for (let run = 0; run < 3; run += 1) {
          const started = performance.now();
          const fetched = await fetchManifest({ config, store, backoff: { baseMs: 2000, maxMs: 30_000 } });
          timings.push(performance.now() - started);
          assert.equal(fetched.url, `${server.url}/stable/manifest.json`);
          const full = fetched.manifest.packages?.full;
          assert.deepEqual(full?.mirrors, [
            `http://127.0.0.1:${deadA}/stable/full.tar.gz`,
            `http://127.0.0.1:${deadB}/stable/full.tar.gz`,
          ]);
        }
        process.stdout.write(
          `# manifest failover past two dead URLs: ${timings.map((ms) => ms.toFixed(1)).join(', ')} ms\n`,
        );
        assert.ok(Math.max(...timings) < 500, `failover took ${timings.join(', ')} ms`);
      } finally {
        store.close();
      }
    });
  });
});

describe('the manifest from a misbehaving server: clear words, bounded waits', () => {
  let server: MisbehavingServer;
  before(async () => {
    server = await new MisbehavingServer(manifest, 'manifest.json').start();
  });
  after(() => server.stop());
  const at = () => `[server]\nmanifest_url = "${server.url}"\n`;

  test('a redirect loop on the manifest says that the server redirects in a loop', () =>
    withTempDir('origin', async (home) => {
      server.fallback = 'redirect-loop';
      await makeHome(home, at());
      const run = await check(home);
      const failure = run.json() as Failure;
      assert.equal(run.code, 1);
      assert.equal(failure.error?.code, 'E_HTTP');
      assert.match(failure.error?.message ?? '', /redirects in a loop/);
      assert.doesNotMatch(run.stdout + run.stderr, /UND_ERR/);
    }));

  test('a manifest that trickles one byte every 50 ms fails with E_STALL below [download] min_rate', () =>
    withTempDir('origin', async (home) => {
      server.fallback = 'trickle';
      server.requests = [];
      await makeHome(home, `${at()}\n[download]\nmin_rate = 1024\nmin_rate_window = 1\n`);
      const started = Date.now();
      const run = await check(home);
      const failure = run.json() as Failure;
      assert.equal(failure.error?.code, 'E_STALL', run.stdout);
      assert.match(failure.error?.message ?? '', /below the minimum of 1024 bytes\/s/);
      assert.equal(server.requests.length, 3, 'three rounds');
      assert.ok(Date.now() - started < 15_000);
    }));

  test('Retry-After on a 503 is honoured before the next round, and a 429 too', () =>
    withTempDir('origin', async (home) => {
      server.fallback = 'normal';
      server.requests = [];
      server.queue = [
        { status: 503, retryAfter: 2 },
        { status: 429, retryAfter: 1 },
      ];
      await makeHome(home, at());
      const started = Date.now();
      const run = await check(home);
      const elapsed = Date.now() - started;
      assert.equal(run.code, 0, run.stdout);
      assert.equal((run.json() as Failure).offered, '2.0.0');
      assert.equal(server.requests.length, 3);
      assert.ok(elapsed >= 3000, `waited for both Retry-After (${elapsed} ms)`);
    }));

  test('a Retry-After past the cap fails the check now, saying when the server wants us back', () =>
    withTempDir('origin', async (home) => {
      server.fallback = { status: 503, retryAfter: 3600 };
      server.requests = [];
      await makeHome(home, at());
      const started = Date.now();
      const run = await check(home);
      const failure = run.json() as Failure;
      assert.equal(failure.error?.code, 'E_HTTP');
      assert.match(failure.error?.message ?? '', /HTTP 503.*come back in 3600 s/);
      assert.equal(server.requests.length, 1);
      assert.ok(Date.now() - started < 5000);
      server.fallback = 'normal';
    }));
});
