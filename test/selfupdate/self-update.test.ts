import assert from 'node:assert/strict';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { readVersion } from '../../scripts/package.js';
import { runCli } from '../helpers/cli.js';
import { ReleaseServer } from '../helpers/release-server.js';
import { extract, packageFor, packageSuite, pathWithoutNode } from './packages.js';

const A = await readVersion();
const B = '99.0.0';
const BROKEN = '99.0.1';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function launch(root: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(path.join(root, 'bin', 'nuwax'), args, { env, timeout: 180_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/**
 * Another client archive made from A's: the same runtime and code under versions/<version>, its
 * package.json saying that version; `broken` makes its CLI exit 3 whatever it is asked.
 */
async function deriveArchive(archiveA: string, directory: string, version: string, broken = false): Promise<string> {
  const work = path.join(directory, `derive-${version}`);
  await mkdir(work, { recursive: true });
  extract(archiveA, work);
  const versionDir = path.join(work, 'versions', version);
  execFileSync('mv', [path.join(work, 'versions', A), versionDir]);
  const packageFile = path.join(versionDir, 'package.json');
  const manifest = JSON.parse(await readFile(packageFile, 'utf8')) as { version: string };
  manifest.version = version;
  await writeFile(packageFile, JSON.stringify(manifest));
  if (broken) await writeFile(path.join(versionDir, 'dist', 'src', 'cli', 'main.js'), 'process.exit(3);\n');
  await rm(path.join(work, 'current'));
  execFileSync('ln', ['-s', path.join('versions', version), path.join(work, 'current')]);
  const file = path.join(directory, `nuwax-${version}-linux-x86_64.tar.gz`);
  execFileSync('tar', ['-czf', file, '-C', work, 'bin', 'current', 'versions']);
  await rm(work, { recursive: true, force: true });
  return file;
}

/** minisign's key pair (the real tool), and a .minisig beside each archive. */
function minisignKeys(directory: string): { publicKey: string; secretKeyFile: string } {
  const publicKeyFile = path.join(directory, 'client.pub');
  const secretKeyFile = path.join(directory, 'client.key');
  execFileSync('minisign', ['-G', '-W', '-p', publicKeyFile, '-s', secretKeyFile], { stdio: 'ignore' });
  const publicKey = execFileSync('tail', ['-1', publicKeyFile], { encoding: 'utf8' }).trim();
  return { publicKey, secretKeyFile };
}

describe('nuwax updates itself (x86_64 archives, minisign, a local server)', packageSuite('x86_64'), () => {
  let work = '';
  let archiveA = '';
  let server: ReleaseServer;
  let publicKey = '';
  let noNodePath = '';

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'nuwax-selfupdate-'));
    archiveA = (await packageFor('x86_64')).file;
    const keys = minisignKeys(work);
    publicKey = keys.publicKey;
    server = await new ReleaseServer().start();
    for (const [version, broken] of [
      [B, false],
      [BROKEN, true],
    ] as const) {
      const archive = await deriveArchive(archiveA, work, version, broken);
      execFileSync('minisign', ['-S', '-s', keys.secretKeyFile, '-m', archive], { stdio: 'ignore' });
      // The publisher's side: latest.json from the archive and minisign's .minisig beside it.
      const output = path.join(work, `latest-${version}.json`);
      const made = await runCli([
        'release',
        'client-manifest',
        archive,
        '--version',
        version,
        '--url-base',
        server.url,
        '-o',
        output,
      ]);
      assert.equal(made.code, 0, made.stderr);
      server.set(`/latest-${version}.json`, await readFile(output));
      server.set(`/${path.basename(archive)}`, await readFile(archive));
    }
    // B's archive offered with the signature of another file: it must never be installed.
    const latestB = JSON.parse(await readFile(path.join(work, `latest-${B}.json`), 'utf8')) as {
      platforms: Record<string, { signature: string }>;
    };
    const latestBroken = JSON.parse(await readFile(path.join(work, `latest-${BROKEN}.json`), 'utf8')) as typeof latestB;
    latestB.platforms['linux-x86_64']!.signature = latestBroken.platforms['linux-x86_64']!.signature;
    server.set('/latest-tampered.json', JSON.stringify(latestB));
    // The application is up to date: each daemon cycle ends up_to_date (exit 0).
    const full = { url: 'full.tar.gz', hash: `sha256:${'a'.repeat(64)}`, size: 1 };
    server.set('/manifest.json', JSON.stringify({ version: '1.0.0', platforms: { x86_64: full, aarch64: full } }));
    noNodePath = await pathWithoutNode(work);
  });

  after(async () => {
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** A box running client A from its archive, offered `offered` in a signed latest.json. */
  async function box(
    name: string,
    offered: string,
    keys = [publicKey],
  ): Promise<{ root: string; home: string; env: NodeJS.ProcessEnv }> {
    const root = path.join(work, name, 'opt-nuwax-client');
    const home = path.join(work, name, 'home');
    await mkdir(root, { recursive: true });
    await mkdir(path.join(home, 'docker'), { recursive: true });
    extract(archiveA, root);
    await writeFile(path.join(home, 'docker', 'docker-compose.yml'), 'services: {}\n');
    await writeFile(
      path.join(home, 'config.toml'),
      [
        '[versions]',
        'docker_service = "1.0.0"',
        '[server]',
        `base_url = "${server.url}"`,
        `manifest_url = "${server.url}/manifest.json"`,
        `client_manifest_url = "${server.url}/latest-${offered}.json"`,
        '[security]',
        `client_public_keys = ${JSON.stringify(keys)}`,
        '',
      ].join('\n'),
    );
    return { root, home, env: { PATH: noNodePath, HOME: path.join(work, name) } };
  }

  test('self-update --yes switches client A to B: bin/nuwax --version says B, status shows it, the server got the report', async () => {
    const { root, home, env } = await box('switch', B);
    const check = await launch(root, ['--home', home, '--json', 'self-update', '--check'], env);
    assert.equal(check.code, 0, check.stderr);
    assert.deepEqual(JSON.parse(check.stdout), { status: 'available', current: A, offered: B, notes: '' });
    const pending = JSON.parse((await launch(root, ['--home', home, '--json', 'status'], env)).stdout) as {
      client: { version: string; update_available: { version: string } | null };
    };
    assert.equal(pending.client.version, A);
    assert.equal(pending.client.update_available?.version, B);

    const run = await launch(root, ['--home', home, '--json', 'self-update', '--yes'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { status: 'success', from: A, to: B });
    assert.equal(await readlink(path.join(root, 'current')), path.join('versions', B));
    assert.equal((await launch(root, ['--version'], env)).stdout.trim(), B);
    assert.ok(existsSync(path.join(root, 'versions', A)), 'the previous client is kept for a rollback');
    assert.ok(!existsSync(path.join(root, 'switch.pending')));
    const status = JSON.parse((await launch(root, ['--home', home, '--json', 'status'], env)).stdout) as {
      client: { version: string; update_available: unknown; last_update: { status: string; from: string; to: string } };
    };
    assert.equal(status.client.version, B);
    assert.equal(status.client.update_available, null);
    assert.deepEqual(
      [status.client.last_update.status, status.client.last_update.from, status.client.last_update.to],
      ['success', A, B],
    );
    assert.ok(
      server.requests.some(
        (request) => request.method === 'POST' && request.url === '/api/v1/clients/self-upgrade-history',
      ),
    );
    const again = await launch(root, ['--home', home, '--json', 'self-update', '--yes'], env);
    assert.equal(JSON.parse(again.stdout).status, 'up_to_date');
  });

  test('a B whose self-test fails leaves A running, is recorded, and is not tried again', async () => {
    const { root, home, env } = await box('broken', BROKEN);
    const run = await launch(root, ['--home', home, '--json', 'self-update', '--yes'], env);
    assert.equal(run.code, 1);
    const result = JSON.parse(run.stdout) as { status: string; kept: string; error: { code: string; message: string } };
    assert.equal(result.status, 'failed');
    assert.equal(result.kept, A);
    assert.equal(result.error.code, 'E_SELF_UPDATE');
    assert.match(result.error.message, /self-test/);
    assert.equal(await readlink(path.join(root, 'current')), path.join('versions', A));
    assert.equal((await launch(root, ['--version'], env)).stdout.trim(), A);
    assert.ok(!existsSync(path.join(root, 'versions', BROKEN)), 'the failed client is removed');
    const status = JSON.parse((await launch(root, ['--home', home, '--json', 'status'], env)).stdout) as {
      client: { last_update: { status: string; to: string; reason: string } };
    };
    assert.equal(status.client.last_update.status, 'failed');
    assert.equal(status.client.last_update.to, BROKEN);
    const downloads = server.requests.filter((request) => request.url.endsWith(`${BROKEN}-linux-x86_64.tar.gz`)).length;
    const again = await launch(root, ['--home', home, '--json', 'self-update', '--yes'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).status, 'skipped');
    assert.equal(
      server.requests.filter((request) => request.url.endsWith(`${BROKEN}-linux-x86_64.tar.gz`)).length,
      downloads,
      'no download again',
    );
  });

  test('never unverified: a signature of another file is E_SIGNATURE, no trusted key is E_UNVERIFIED; A stays', async () => {
    const tampered = await box('tampered', 'tampered');
    const run = await launch(tampered.root, ['--home', tampered.home, '--json', 'self-update', '--yes'], tampered.env);
    assert.equal(run.code, 1);
    assert.equal((JSON.parse(run.stdout) as { error: { code: string } }).error.code, 'E_SIGNATURE');
    assert.equal(await readlink(path.join(tampered.root, 'current')), path.join('versions', A));
    assert.ok(!existsSync(path.join(tampered.root, 'versions', B)), 'nothing extracted');

    const keyless = await box('keyless', B, []);
    const refused = await launch(keyless.root, ['--home', keyless.home, '--json', 'self-update', '--yes'], keyless.env);
    assert.equal(refused.code, 1);
    assert.equal((JSON.parse(refused.stdout) as { error: { code: string } }).error.code, 'E_UNVERIFIED');
    assert.equal((await launch(keyless.root, ['--version'], keyless.env)).stdout.trim(), A);
    const status = JSON.parse(
      (await launch(keyless.root, ['--home', keyless.home, '--json', 'status'], keyless.env)).stdout,
    ) as {
      client: { last_update: unknown };
    };
    assert.equal(status.client.last_update, null, 'nothing recorded against B: adding the key makes it installable');
  });

  test('the daemon switches to B and exits 75 for systemd; B confirms at its start', async () => {
    const { root, home, env } = await box('daemon', B);
    const first = await launch(root, ['--home', home, '--json', 'daemon', '--once'], env);
    assert.equal(first.code, 75, first.stderr);
    assert.equal(await readlink(path.join(root, 'current')), path.join('versions', B));
    assert.ok(existsSync(path.join(root, 'switch.pending')), 'B has not confirmed yet');
    const second = await launch(root, ['--home', home, '--json', 'daemon', '--once'], env);
    assert.equal(second.code, 0, second.stderr);
    assert.ok(!existsSync(path.join(root, 'switch.pending')));
    assert.equal((await launch(root, ['--version'], env)).stdout.trim(), B);
    const status = JSON.parse((await launch(root, ['--home', home, '--json', 'status'], env)).stdout) as {
      client: { last_update: { status: string; to: string } };
    };
    assert.deepEqual([status.client.last_update.status, status.client.last_update.to], ['success', B]);
  });

  test('a switched-to client that never confirms: after three daemon starts the launcher runs A, which puts itself back', async () => {
    const { root, home, env } = await box('unconfirmed', BROKEN);
    // As a daemon that switched and exited leaves it: current → a client that cannot start.
    execFileSync('cp', ['-a', path.join(root, 'versions', A), path.join(root, 'versions', BROKEN)]);
    await writeFile(path.join(root, 'versions', BROKEN, 'dist', 'src', 'cli', 'main.js'), 'process.exit(3);\n');
    await rm(path.join(root, 'current'));
    execFileSync('ln', ['-s', path.join('versions', BROKEN), path.join(root, 'current')]);
    await writeFile(path.join(root, 'switch.pending'), `${A} 0\n`);
    for (let start = 1; start <= 3; start += 1) {
      const failed = await launch(root, ['--home', home, 'daemon', '--once'], env);
      assert.equal(failed.code, 3, `start ${start} runs the broken client`);
    }
    const fourth = await launch(root, ['--home', home, '--json', 'daemon', '--once'], env);
    assert.equal(fourth.code, 0, fourth.stderr);
    assert.equal(await readlink(path.join(root, 'current')), path.join('versions', A));
    assert.ok(!existsSync(path.join(root, 'switch.pending')));
    const status = JSON.parse((await launch(root, ['--home', home, '--json', 'status'], env)).stdout) as {
      client: { version: string; last_update: { status: string; to: string } };
    };
    assert.equal(status.client.version, A);
    assert.deepEqual([status.client.last_update.status, status.client.last_update.to], ['rolled_back', BROKEN]);
  });

  test('kill -9 during the switch ends on A or B, never neither; the next self-update finishes it', async () => {
    // Kill points: while B's self-test runs (B installed, current untouched), as soon as the switch
    // is marked, and while the switched-to client is checked through the launcher.
    const points: Array<{ name: string; ready: (root: string) => boolean }> = [
      { name: 'self-test', ready: (root) => existsSync(path.join(root, 'versions', B, 'bin', 'nuwax')) },
      { name: 'marked', ready: (root) => existsSync(path.join(root, 'switch.pending')) },
      { name: 'switched', ready: (root) => readlinkSafe(path.join(root, 'current')).endsWith(B) },
    ];
    for (const point of points) {
      const { root, home, env } = await box(`kill-${point.name}`, B);
      const child = spawn(path.join(root, 'bin', 'nuwax'), ['--home', home, '--json', 'self-update', '--yes'], {
        env,
        stdio: 'ignore',
      });
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      await waitFor(() => point.ready(root), child);
      killTree(child);
      await exited;
      const version = (await launch(root, ['--version'], env)).stdout.trim();
      assert.ok(version === A || version === B, `after a kill at ${point.name} the box runs ${version}`);
      const next = await launch(root, ['--home', home, '--json', 'self-update', '--yes'], env);
      assert.equal(next.code, 0, `${point.name}: ${next.stderr}`);
      assert.equal((await launch(root, ['--version'], env)).stdout.trim(), B, point.name);
      assert.ok(!existsSync(path.join(root, 'switch.pending')), point.name);
      assert.ok(!existsSync(path.join(root, 'current.next')), point.name);
    }
  });
});

function readlinkSafe(file: string): string {
  try {
    return readlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

async function waitFor(ready: () => boolean, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!ready()) {
    if (child.exitCode !== null) throw new Error('self-update ended before the kill point');
    if (Date.now() > deadline) throw new Error('the kill point never came');
    await sleep(2);
  }
}

/** SIGKILL to the launcher's process (it exec'd node) and to the self-test it may be running. */
function killTree(child: ChildProcess): void {
  const pids = execFileSync('sh', ['-c', `pgrep -P ${child.pid} || true`], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  child.kill('SIGKILL');
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
}
