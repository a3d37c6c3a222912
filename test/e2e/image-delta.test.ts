import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildBaseImage, buildLayeredImage } from '../../scripts/lib/layered-image.js';
import { dockerReachable, removeImages, type SampleVersion } from '../../scripts/lib/sample-app.js';
import { readImageArchive } from '../../src/images/index.js';
import { runCli } from '../helpers/cli.js';
import { buildRelease, cleanup, cli, type Releases, startReleases, uniqueId, writeHome } from './fixture.js';

/**
 * Image-layer deltas end to end: the real CLI, a release server on 127.0.0.1, the real engine. A
 * patch from A to B ships B's image thin (only its changed layer); the box rebuilds it from A's.
 */
const docker = dockerReachable();
const skip = !docker && process.env.NUWAX_REQUIRE_DOCKER !== '1';
if (!docker && !skip) throw new Error('NUWAX_REQUIRE_DOCKER=1 but Docker is not reachable');

const id = uniqueId();
const port = 20000 + Math.floor(Math.random() * 20000);
const baseTag = `nuwax-delta-${id}:base`;
const tagA = `nuwax-delta-${id}:a`;
const tagB = `nuwax-delta-${id}:b`;
const SHARED = 6 * 1024 * 1024;
const LAYERS = [
  { name: 'deps-1', bytes: SHARED },
  { name: 'deps-2', bytes: 2 * 1024 * 1024 },
  { name: 'app', bytes: 256 * 1024 },
];
const A: SampleVersion = { version: '2.0.0', port, imageTag: tagA, page: 'A' };
const B: SampleVersion = { ...A, version: '2.0.0.1', imageTag: tagB, page: 'B' };
const projects: string[] = [];
let work = '';
let releases: Releases | undefined;
let channelA = '';
let channelB = '';
let imageIdB = '';
let archiveB = '';
let patchSize = 0;
const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const archiveName = (tag: string) => `${tag.replace(/[^a-zA-Z0-9_.-]+/g, '_')}.tar`;

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

async function publish(name: string, version: SampleVersion, patchFrom?: SampleVersion): Promise<string> {
  const dir = await buildRelease(path.join(work, name), version);
  const full = path.join(work, 'packages', name, `full-${version.version}.tar.gz`);
  await cli(['release', 'pack', dir, '--version', version.version, '--arch', arch, '-o', full]);
  const packages = [full];
  if (patchFrom) {
    const old = await buildRelease(path.join(work, `${name}-base`), patchFrom);
    const patch = path.join(work, 'packages', name, `patch-${version.version}.tar.gz`);
    const made = await cli([
      'release',
      'patch',
      old,
      dir,
      '--from',
      patchFrom.version,
      '--to',
      version.version,
      '--arch',
      arch,
      '-o',
      patch,
    ]);
    assert.match(made.stdout, /thin/);
    packages.push(patch);
    patchSize = statSync(patch).size;
    archiveB = path.join(dir, 'images', archiveName(tagB));
  }
  await releases!.publish(name, { version: version.version, packages });
  return `${releases!.server.url}/${name}/manifest.json`;
}

before(async () => {
  if (skip) return;
  work = await mkdtemp(path.join(os.tmpdir(), 'nuwax-delta-e2e-'));
  releases = await startReleases(work);
  releases.tags.push(baseTag, tagA, tagB);
  buildBaseImage(baseTag);
  const context = path.join(work, 'context');
  buildLayeredImage(tagA, baseTag, context, LAYERS);
  imageIdB = buildLayeredImage(tagB, baseTag, context, LAYERS, ['app']);
  channelA = await publish('a', A);
  channelB = await publish('b', B, A);
  // The box must get B from the patch, not from the engine that built it.
  removeImages([tagB]);
});

after(async () => {
  if (skip) return;
  cleanup(releases, projects);
  await releases?.server.stop();
  await rm(work, { recursive: true, force: true });
});

function home(name: string): string {
  cleanup(undefined, projects);
  const project = `nuwaxdelta${id}${name}`;
  projects.push(project);
  const directory = path.join(work, 'homes', name);
  writeHome(directory, { url: channelA, project });
  return directory;
}

const upgrade = (homeDir: string) => runCli(['--home', homeDir, '--json', 'upgrade', '--yes'], { timeoutMs: 300_000 });

function setChannel(homeDir: string, manifest: string): void {
  const file = path.join(homeDir, 'config.toml');
  writeFileSync(file, readFileSync(file, 'utf8').replace(/manifest_url = ".*"/, `manifest_url = "${manifest}"`));
}

async function page(): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/index.html`).catch(() => null);
  return response?.ok ? (await response.text()).trim() : '(down)';
}

function webImage(project: string): string {
  const ids = spawnSync('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`], {
    encoding: 'utf8',
  }).stdout.split('\n');
  const images = ids
    .filter(Boolean)
    .map((container) => spawnSync('docker', ['inspect', '--format', '{{.Image}}', container], { encoding: 'utf8' }))
    .map((run) => run.stdout.trim());
  return [...new Set(images)].join(',');
}

/** The prepare steps a result ran, in order (a step run again is listed again). */
function prepareSteps(result: Record<string, unknown>): string[] {
  const names = (result.steps as Array<{ step: string }>).map((timing) => timing.step);
  return names.slice(0, names.indexOf('loading_images') + 1);
}

async function installA(name: string): Promise<string> {
  const homeDir = home(name);
  const run = await upgrade(homeDir);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.equal(run.json().strategy, 'full');
  assert.equal(await page(), 'A');
  setChannel(homeDir, channelB);
  return homeDir;
}

describe('image-layer deltas against a real Docker engine', { skip, concurrency: false }, () => {
  test('the patch ships B thin: smaller than the layers it leaves out', () => {
    assert.ok(patchSize < SHARED / 2, `patch ${patchSize} bytes`);
    assert.ok(statSync(archiveB).size > SHARED + 2 * 1024 * 1024);
  });

  test('A (full) → B by a thin patch: B runs healthy from the rebuilt archive; rollback → A', async () => {
    const homeDir = await installA('patch');
    const run = await upgrade(homeDir);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const result = run.json();
    assert.equal(result.status, 'success');
    assert.equal(result.strategy, 'patch');
    assert.equal(result.fallback_reason, undefined);
    assert.deepEqual(prepareSteps(result), [
      'downloading',
      'verifying',
      'staging',
      'rebuilding_images',
      'loading_images',
    ]);
    assert.equal(await page(), 'B');
    const project = projects.at(-1)!;
    assert.equal(webImage(project), imageIdB);
    // What ends in docker/images/ is B's full archive, byte for byte: the next patch has its base.
    const installed = path.join(homeDir, 'docker', 'images', archiveName(tagB));
    assert.equal(sha256(installed), sha256(archiveB));
    assert.equal((await readImageArchive(installed)).images[0]!.tags[0], tagB);

    const back = await runCli(['--home', homeDir, '--json', 'rollback', '--yes'], { timeoutMs: 300_000 });
    assert.equal(back.code, 0, back.stdout + back.stderr);
    assert.equal(await page(), 'A');
    assert.notEqual(webImage(project), imageIdB);
    const status = await runCli(['--home', homeDir, '--json', 'status']);
    assert.equal(status.json().version, '2.0.0');
  });

  test("with A's archive gone from the box, the base layers come from docker save of the running image", async () => {
    const homeDir = await installA('saved');
    removeImages([tagB]);
    rmSync(path.join(homeDir, 'docker', 'images', archiveName(tagA)));
    const run = await upgrade(homeDir);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.json().strategy, 'patch');
    assert.equal(await page(), 'B');
    assert.equal(sha256(path.join(homeDir, 'docker', 'images', archiveName(tagB))), sha256(archiveB));
  });

  test('a base layer tampered with on the box: the upgrade falls back to the full package', async () => {
    const homeDir = await installA('tampered');
    removeImages([tagB]);
    const boxArchive = path.join(homeDir, 'docker', 'images', archiveName(tagA));
    const archive = await readImageArchive(boxArchive);
    const shared = archive.images[0]!.layers.find((layer) => layer.entry.size > SHARED)!;
    const bytes = readFileSync(boxArchive);
    const at = shared.entry.dataStart + 4096;
    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(boxArchive, bytes);
    const run = await upgrade(homeDir);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const result = run.json();
    assert.equal(result.status, 'success');
    assert.equal(result.strategy, 'full');
    assert.match(String(result.fallback_reason), /base layer/);
    // The rebuild sends the loop back to download the full package; the full one skips the rebuild.
    assert.deepEqual(prepareSteps(result), [
      'downloading',
      'verifying',
      'staging',
      'rebuilding_images',
      'downloading',
      'verifying',
      'staging',
      'loading_images',
    ]);
    assert.equal(await page(), 'B');
    assert.equal(webImage(projects.at(-1)!), imageIdB);
  });
});
