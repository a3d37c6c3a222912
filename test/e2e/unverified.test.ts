import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dockerReachable, type SampleVersion } from '../../scripts/lib/sample-app.js';
import { runCli } from '../helpers/cli.js';
import { buildRelease, cleanup, cli, makeImage, type Releases, startReleases, uniqueId, writeHome } from './fixture.js';

/**
 * `[security] allow_unverified` means what SPEC 2 says: a package the manifest gives no SHA-256 for
 * (nuwax-cli's platform entries have neither hash nor size) is refused by default, and installs
 * when the operator allows it, with a warning. The real CLI, a real server, the real Docker engine.
 */
const docker = dockerReachable();
const skip = !docker && process.env.NUWAX_REQUIRE_DOCKER !== '1';
if (!docker && !skip) throw new Error('NUWAX_REQUIRE_DOCKER=1 but Docker is not reachable');

const id = uniqueId();
const port = 20000 + Math.floor(Math.random() * 20000);
const tag = `nuwax-e2e-${id}:unverified`;
const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const A: SampleVersion = { version: '1.0.0', port, imageTag: tag, page: 'A', files: { 'app/config.ini': 'mode=a\n' } };
const projects: string[] = [];
let work = '';
let releases: Releases | undefined;
let manifestUrl = '';

before(async () => {
  if (skip) return;
  work = await mkdtemp(path.join(os.tmpdir(), 'nuwax-e2e-unverified-'));
  releases = await startReleases(work);
  makeImage(tag, releases.tags);
  const dir = await buildRelease(work, A);
  const out = path.join(work, 'packages');
  mkdirSync(out, { recursive: true });
  const file = path.join(out, 'full-1.0.0.tar.gz');
  await cli(['release', 'pack', dir, '--version', A.version, '--arch', arch, '-o', file]);
  releases.server.set('/unverified/full-1.0.0.tar.gz', readFileSync(file));
  // nuwax-cli's shape: a platform entry with a URL on the server and no hash or size; nulls elsewhere.
  const manifest = {
    version: 'v1.0.0',
    release_date: '2026-11-20T10:00:00Z',
    release_notes: '',
    packages: null,
    platforms: { [arch]: { url: '/unverified/full-1.0.0.tar.gz', signature: '' } },
    patch: null,
  };
  releases.server.set('/unverified/manifest.json', JSON.stringify(manifest));
  manifestUrl = `${releases.server.url}/unverified/manifest.json`;
});

after(async () => {
  if (skip) return;
  cleanup(releases, projects);
  await releases?.server.stop();
  await rm(work, { recursive: true, force: true });
});

function home(name: string, extra: string): string {
  cleanup(undefined, projects);
  const project = `nuwaxe2e${id}${name}`;
  projects.push(project);
  const directory = path.join(work, 'homes', name);
  writeHome(directory, { url: manifestUrl, project, extra });
  return directory;
}

async function page(): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/index.html`).catch(() => null);
  return response?.ok ? (await response.text()).trim() : '(down)';
}

const upgrade = (homeDir: string) => runCli(['--home', homeDir, '--json', 'upgrade', '--yes'], { timeoutMs: 300_000 });

describe('a package without a SHA-256 (allow_unverified)', { skip, concurrency: false }, () => {
  test('refused by default: E_UNVERIFIED, exit 1, nothing installed', async () => {
    const homeDir = home('refused', '');
    const run = await upgrade(homeDir);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const result = run.json() as { status: string; changed: boolean; error: { code: string; message: string } };
    assert.equal(result.error.code, 'E_UNVERIFIED');
    assert.match(result.error.message, /allow_unverified/);
    assert.equal(result.changed, false);
    assert.ok(!existsSync(path.join(homeDir, 'docker', 'docker-compose.yml')), 'nothing was installed');
    assert.ok(!existsSync(path.join(homeDir, 'cache', 'downloads', 'full-1.0.0.tar.gz')));
  });

  test('installs with allow_unverified = true, and check and doctor say it was unverified', async () => {
    const homeDir = home('allowed', '\n[security]\nallow_unverified = true\n');
    const run = await upgrade(homeDir);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.json().status, 'success');
    assert.equal(run.json().version, '1.0.0');
    assert.equal(await page(), 'A');
    assert.match(run.stderr, /installed unverified because security\.allow_unverified is true/);
    assert.match(String((run.json().warnings as string[])[0]), /installed unverified/);
    assert.equal(run.json().outcome, 'success');
    const history = await runCli(['--home', homeDir, '--json', 'history']);
    const rows = history.json() as unknown as Array<{ outcome: string; warnings: string[] }>;
    assert.equal(rows[0]?.outcome, 'success');
    assert.match(String(rows[0]?.warnings[0]), /installed unverified/);
    const text = await runCli(['--home', homeDir, 'history']);
    assert.match(text.stdout, /success .*warning: .*installed unverified/);

    const check = await runCli(['--home', homeDir, '--json', 'check', '--force-full']);
    assert.equal(check.code, 0, check.stderr);
    assert.equal(check.json().strategy, 'full');
    assert.match(String((check.json().warnings as string[])[0]), /installed unverified/);

    const doctor = await runCli(['--home', homeDir, '--json', 'doctor'], { timeoutMs: 120_000 });
    const report = doctor.json() as { verdict: string; checks: Array<{ id: string; status: string; message: string }> };
    assert.notEqual(report.verdict, 'READY');
    const manifestLine = report.checks.find((check) => check.id === 'manifest');
    assert.equal(manifestLine?.status, 'warn');
    assert.match(manifestLine!.message, /\[security\] allow_unverified = true/);
  });
});
