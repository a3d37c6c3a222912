import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SampleVersion } from '../../scripts/lib/sample-app.js';
import { type CliRun, runCli } from '../helpers/cli.js';
import { dockerSuite } from '../helpers/docker.js';
import { ReleaseServer } from '../helpers/release-server.js';
import { buildRelease, cleanup, cli, makeImage, type Releases, startReleases, uniqueId, writeHome } from './fixture.js';

/**
 * Issue 7 end to end, against the real Docker engine: a box installs a release staged earlier
 * with the release server gone, and a box that never reaches a server takes a release from an
 * offline bundle. Skipped without Docker unless NUWAX_REQUIRE_DOCKER=1, where it fails.
 */
const suite = await dockerSuite();
const ARCH = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const id = uniqueId();
const port = 20000 + Math.floor(Math.random() * 20000);
const tagA = `nuwax-offline-${id}:a`;
const A: SampleVersion = { version: '1.0.0', port, imageTag: tagA, page: 'A', files: { 'app/config.ini': 'mode=a\n' } };
const B: SampleVersion = {
  ...A,
  version: '1.0.0.1',
  page: 'B',
  files: { 'app/config.ini': 'mode=b\n', 'app/new.txt': 'new in B\n' },
};
const projects: string[] = [];
let work = '';
let releases: Releases | undefined;
let channelA = '';

/** Publishes `version` (full package, and a patch from `patchFrom`) on channel `name`; returns the manifest URL. */
async function channel(name: string, version: SampleVersion, patchFrom?: SampleVersion): Promise<string> {
  const dir = await buildRelease(path.join(work, name), version);
  const out = path.join(work, 'packages', name);
  const packages = [path.join(out, `full-${version.version}.tar.gz`)];
  await cli(['release', 'pack', dir, '--version', version.version, '--arch', ARCH, '-o', packages[0]!]);
  if (patchFrom) {
    packages.push(path.join(out, `patch-${version.version}.tar.gz`));
    await cli([
      'release',
      'patch',
      await buildRelease(path.join(work, `${name}-base`), patchFrom),
      dir,
      '--from',
      patchFrom.version,
      '--to',
      version.version,
      '--arch',
      ARCH,
      '-o',
      packages[1]!,
    ]);
  }
  await releases!.publish(name, { version: version.version, packages });
  return `${releases!.server.url}/${name}/manifest.json`;
}

/** A URL nobody listens on: a port the system gave and took back. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: free } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${free}/manifest.json`;
}

function setConfig(home: string, change: (toml: string) => string): void {
  const file = path.join(home, 'config.toml');
  writeFileSync(file, change(readFileSync(file, 'utf8')));
}

async function page(): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/index.html`).catch(() => null);
  return response?.ok ? (await response.text()).trim() : '(down)';
}

const upgrade = (home: string, ...extra: string[]) =>
  runCli(['--home', home, '--json', 'upgrade', '--yes', ...extra], { timeoutMs: 240_000 });

function succeeded(run: CliRun, what: string): Record<string, unknown> {
  assert.equal(run.code, 0, `${what}: ${run.stdout}${run.stderr}`);
  return run.json();
}

/** A box with A installed from the channel, its services up. */
async function installA(name: string): Promise<string> {
  cleanup(undefined, projects);
  const project = `nuwaxoffline${id}${name}`;
  projects.push(project);
  const home = path.join(work, 'homes', name);
  writeHome(home, { url: channelA, project });
  assert.equal(succeeded(await upgrade(home), 'install A').status, 'success');
  assert.equal(await page(), 'A');
  return home;
}

const cacheFiles = (home: string) => readdirSync(path.join(home, 'cache', 'downloads'));

before(async () => {
  if (suite.skip) return;
  work = await mkdtemp(path.join(os.tmpdir(), 'nuwax-offline-'));
  releases = await startReleases(work);
  makeImage(tagA, releases.tags);
  channelA = await channel('a', A);
  await channel('b', B, A);
});

after(async () => {
  if (suite.skip) return;
  cleanup(releases, projects);
  await releases?.server.stop();
  await rm(work, { recursive: true, force: true });
});

describe('offline upgrades against a real Docker engine (issue 7)', { ...suite, concurrency: false }, () => {
  test('pre-staged with --download-only, then the server stops: upgrade --yes installs B from the cache, fetching nothing', async (context) => {
    const home = await installA('prestaged');
    // B on a server of its own, so that this test can stop it.
    const server = await new ReleaseServer().start();
    for (const [name, body] of releases!.server.files) server.set(name, body);
    setConfig(home, (toml) => toml.replace(channelA, `${server.url}/b/manifest.json`));
    const staged = succeeded(
      await runCli(['--home', home, '--json', 'upgrade', '--download-only'], { timeoutMs: 120_000 }),
      'download-only',
    );
    assert.deepEqual({ status: staged.status, version: staged.version }, { status: 'staged', version: '1.0.0.1' });
    const fetched = server.requests.filter((request) => request.url.endsWith('.tar.gz')).length;
    assert.ok(fetched >= 1, 'the package was downloaded by the pre-stage');
    await server.stop();

    const run = await upgrade(home);
    const result = succeeded(run, 'upgrade with the server stopped');
    assert.deepEqual({ status: result.status, version: result.version }, { status: 'success', version: '1.0.0.1' });
    assert.match(run.stderr, /cannot use the release server \(E_NETWORK\); using the staged release/);
    assert.equal(
      run.lines().filter((event) => event.type === 'progress' && event.step === 'downloading').length,
      0,
      'no byte downloaded',
    );
    assert.ok(!cacheFiles(home).some((name) => name.endsWith('.part')), 'no partial download');
    assert.ok(
      run
        .lines()
        .some(
          (event) => event.type === 'log' && /extraction made when the release was staged/.test(String(event.message)),
        ),
      'the pre-stage extraction is used, not made again',
    );
    assert.equal(await page(), 'B');
    assert.equal(readFileSync(path.join(home, 'docker', 'app', 'new.txt'), 'utf8'), 'new in B\n');
    context.diagnostic(`offline switch to B: downtime ${String(result.downtime_ms)} ms`);
  });

  test('a box that never reaches a server: bundle B, import it, upgrade --yes installs B', async (context) => {
    const home = await installA('bundle');
    // The release as its publisher holds it: manifest signed, packages in their own folder.
    const manifest = path.join(work, 'out', 'b', 'manifest.json');
    const keys = (await cli(['--json', 'release', 'keygen', '-o', path.join(work, 'offline-signing')])).json();
    await cli(['release', 'sign', manifest, '-k', String(keys.private_key_file)]);
    const bundle = path.join(work, 'b.nuwax.tar');
    await cli([
      'release',
      'bundle',
      '--manifest',
      manifest,
      '--packages',
      path.join(work, 'packages', 'b'),
      '-o',
      bundle,
    ]);

    const dead = await deadUrl();
    setConfig(
      home,
      (toml) => `${toml.replace(channelA, dead)}\n[security]\npublic_keys = ["${String(keys.public_key)}"]\n`,
    );
    const started = Date.now();
    const imported = succeeded(
      await runCli(['--home', home, '--json', 'import', bundle, '--yes'], { timeoutMs: 120_000 }),
      'import',
    );
    const importMs = Date.now() - started;
    assert.deepEqual(
      { status: imported.status, version: imported.version, strategy: imported.strategy },
      { status: 'staged', version: '1.0.0.1', strategy: 'patch' },
    );
    const status = succeeded(await runCli(['--home', home, '--json', 'status']), 'status');
    assert.equal((status.staged as { version: string }).version, '1.0.0.1');

    const run = await upgrade(home);
    const result = succeeded(run, 'upgrade with no server');
    assert.deepEqual(
      { status: result.status, version: result.version, strategy: result.strategy },
      { status: 'success', version: '1.0.0.1', strategy: 'patch' },
    );
    assert.equal(
      run.lines().filter((event) => event.type === 'progress' && event.step === 'downloading').length,
      0,
      'no byte downloaded',
    );
    assert.ok(
      run
        .lines()
        .some(
          (event) => event.type === 'log' && /extraction made when the release was staged/.test(String(event.message)),
        ),
      "the import's extraction is used, not made again",
    );
    assert.equal(await page(), 'B');
    assert.ok(existsSync(path.join(home, 'docker', 'app', 'new.txt')));
    const final = succeeded(await runCli(['--home', home, '--json', 'status']), 'status');
    assert.deepEqual({ version: final.version, staged: final.staged }, { version: '1.0.0.1', staged: null });
    context.diagnostic(
      `bundle of ${(readFileSync(bundle).length / 1024).toFixed(0)} KiB imported in ${importMs} ms (CLI, with staging); switch downtime ${String(result.downtime_ms)} ms`,
    );
  });
});
