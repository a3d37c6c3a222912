import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import tarStream from 'tar-stream';
import { ErrorCodes, isNuwaxError, type NuwaxError } from '../../src/errors/index.js';
import type { ProgressEvent } from '../../src/events/index.js';
import { DockerRuntime, loadImages, readSaveManifest } from '../../src/runtime/index.js';
import {
  buildBusyboxImage,
  docker,
  dockerSuite,
  imageId,
  loopService,
  removeImages,
  saveImage,
  uniqueName,
  writeComposeProject,
} from '../helpers/docker.js';

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const [name, body] of Object.entries(files)) pack.entry({ name }, body);
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

describe(
  'images: load for this arch, skip what is present, refuse the wrong arch (SPEC 5)',
  await dockerSuite(),
  () => {
    const name = uniqueName('nuwax-img');
    const amd64Tag = `${name}:1.0-amd64`;
    const arm64Tag = `${name}:1.0-arm64`;
    const plainTag = `${name}-plain:1`;
    const appTag = `${name}:1.0`;
    let work: string;
    let archives: string;
    const ids: Record<string, string> = {};

    before(async () => {
      work = await mkdtemp(path.join(os.tmpdir(), 'nuwax-images-'));
      archives = path.join(work, 'images');
      await mkdir(archives);
      ids['amd64'] = await buildBusyboxImage(amd64Tag);
      ids['arm64'] = await buildBusyboxImage(arm64Tag, { arch: 'arm64' });
      // Every import has its own creation time, hence its own ID, even from the same rootfs.
      ids['plain'] = await buildBusyboxImage(plainTag);
      await saveImage(amd64Tag, path.join(archives, 'app-amd64.tar'));
      await saveImage(arm64Tag, path.join(archives, 'app-arm64.tar'));
      await saveImage(plainTag, path.join(archives, 'plain.tar'));
      await removeImages([amd64Tag, arm64Tag, plainTag]);
    });

    after(async () => {
      await removeImages([amd64Tag, arm64Tag, plainTag, appTag]);
      await rm(work, { recursive: true, force: true });
    });

    test('reads the image ID and tags of an archive without loading it', async () => {
      assert.deepEqual(await readSaveManifest(path.join(archives, 'app-amd64.tar')), {
        id: ids['amd64'],
        tags: [amd64Tag],
      });
      assert.equal(await imageId(amd64Tag), null);
    });

    test('loads the archives for this arch, retags app:1.0-amd64 as app:1.0, leaves arm64 alone, then skips what is present', async () => {
      const events: ProgressEvent[] = [];
      const first = await loadImages(archives, 'x86_64', { onProgress: (event) => events.push(event) });
      assert.deepEqual(first, { loaded: ['app-amd64.tar', 'plain.tar'], skipped: ['app-arm64.tar'] });
      assert.equal(await imageId(appTag), ids['amd64']);
      assert.equal(await imageId(amd64Tag), ids['amd64']);
      assert.equal(await imageId(plainTag), ids['plain']);
      assert.equal(await imageId(arm64Tag), null, 'the arm64 archive is not loaded on x86_64');
      assert.deepEqual(events.at(-1), {
        type: 'progress',
        step: 'loading_images',
        done: 3,
        total: 3,
        rate: events.at(-1)!.rate,
        eta: events.at(-1)!.eta,
        unit: 'images',
      });

      // Someone points app:1.0 at another image: present IDs are not loaded again, but tags are put right.
      await docker(['tag', plainTag, appTag]);
      const second = await loadImages(archives, 'x86_64');
      assert.deepEqual(second, { loaded: [], skipped: ['app-amd64.tar', 'app-arm64.tar', 'plain.tar'] });
      assert.equal(await imageId(appTag), ids['amd64']);
    });

    test('checkImages accepts images for this arch and names the image and its arch when it is wrong', async () => {
      await loadImages(archives, 'x86_64');
      const dir = path.join(work, 'check');
      await mkdir(dir, { recursive: true });
      const runtime = new DockerRuntime({
        dockerDir: dir,
        composeFile: path.join(dir, 'docker-compose.yml'),
        projectName: uniqueName('nuwaxcheck'),
      });
      await writeComposeProject(dir, { app: loopService(appTag), other: loopService(plainTag) });
      assert.deepEqual((await runtime.composeImages()).sort(), [appTag, plainTag].sort());
      await runtime.checkImages('x86_64');

      // The arm64 archive loaded as on an aarch64 box: now app:1.0 is an arm64 image.
      const onArm = await loadImages(archives, 'aarch64');
      assert.deepEqual(onArm.loaded, ['app-arm64.tar']);
      assert.deepEqual(onArm.skipped, ['app-amd64.tar', 'plain.tar']);
      assert.equal(await imageId(appTag), ids['arm64']);
      await assert.rejects(runtime.checkImages('x86_64'), (error: NuwaxError) => {
        assert.equal(error.code, ErrorCodes.E_IMAGE_ARCH);
        assert.match(error.message, new RegExp(`${appTag}.*arm64.*x86_64`));
        assert.deepEqual(error.details, { image: appTag, imageArch: 'arm64', arch: 'x86_64' });
        return true;
      });
      await assert.rejects(
        runtime.checkImages('aarch64'),
        (error: NuwaxError) => error.code === ErrorCodes.E_IMAGE_ARCH && error.message.includes(plainTag),
      );
      await loadImages(archives, 'x86_64');
      assert.equal(await imageId(appTag), ids['amd64']);
    });

    test('a staged compose file is validated and checked in its own folder, before docker/ exists (first install)', async () => {
      await loadImages(archives, 'x86_64');
      const staged = path.join(work, 'staging', 'docker');
      await mkdir(staged, { recursive: true });
      const stagedCompose = await writeComposeProject(staged, {
        app: { ...loopService(appTag), volumes: ['./data:/data'] },
      });
      const dockerDir = path.join(work, 'home', 'docker');
      const runtime = new DockerRuntime({ dockerDir, composeFile: path.join(dockerDir, 'docker-compose.yml') });
      await runtime.validate(stagedCompose);
      await runtime.checkImages('x86_64', stagedCompose);
      assert.deepEqual(await runtime.composeImages(stagedCompose), [appTag]);
    });

    test('checkImages refuses a compose file that names an image nobody loaded (E_IMAGE_MISSING)', async () => {
      const dir = path.join(work, 'missing');
      await mkdir(dir, { recursive: true });
      const composeFile = await writeComposeProject(dir, { app: loopService(`${name}-never-loaded:9`) });
      const runtime = new DockerRuntime({ dockerDir: dir, composeFile, projectName: uniqueName('nuwaxmissing') });
      await assert.rejects(
        runtime.checkImages('x86_64'),
        (error: unknown) =>
          isNuwaxError(error, ErrorCodes.E_IMAGE_MISSING) &&
          (error as NuwaxError).message.includes(`${name}-never-loaded:9`),
      );
    });

    test('a file that is not a docker save archive is E_IMAGE_LOAD, and the archives before it stay loaded', async () => {
      const dir = path.join(work, 'broken');
      await mkdir(dir, { recursive: true });
      await saveImage(plainTag, path.join(dir, 'a-good.tar'));
      await writeFile(path.join(dir, 'b-broken.tar'), Buffer.alloc(4096, 7));
      await removeImages([plainTag]);
      await assert.rejects(
        loadImages(dir, 'x86_64'),
        (error: NuwaxError) =>
          error.code === ErrorCodes.E_IMAGE_LOAD && /b-broken\.tar is not a docker save archive/.test(error.message),
      );
      assert.equal(await imageId(plainTag), ids['plain']);
    });

    test('an archive docker load rejects is E_IMAGE_LOAD with docker’s words, and nothing is tagged', async () => {
      const dir = path.join(work, 'unloadable');
      await mkdir(dir, { recursive: true });
      const bogusTag = `${name}-bogus:1-amd64`;
      const config = `${'ab'.repeat(32)}.json`;
      const manifest = JSON.stringify([{ Config: config, RepoTags: [bogusTag], Layers: ['missing/layer.tar'] }]);
      await writeFile(
        path.join(dir, 'bogus-amd64.tar'),
        await tarOf({
          'manifest.json': manifest,
          [config]: '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:00"]}}',
        }),
      );
      await assert.rejects(loadImages(dir, 'x86_64'), (error: NuwaxError) => {
        assert.equal(error.code, ErrorCodes.E_IMAGE_LOAD);
        assert.match(error.message, /docker load of bogus-amd64\.tar failed: \S+/);
        return true;
      });
      assert.equal(await imageId(bogusTag), null);
      assert.equal(await imageId(`${name}-bogus:1`), null);
    });
  },
);
