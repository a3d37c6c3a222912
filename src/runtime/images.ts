import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { createProgressReporter, type ProgressListener } from '../events/index.js';
import { ErrorCodes, NuwaxError, throwIfAborted } from '../errors/index.js';
import { whenAbsent } from '../fsutil/index.js';
import { runCommand } from './exec.js';

export type HostArch = 'x86_64' | 'aarch64';

const SUFFIXES: Record<string, HostArch> = { amd64: 'x86_64', x86_64: 'x86_64', arm64: 'aarch64', aarch64: 'aarch64' };
const DOCKER_ARCH: Record<HostArch, string[]> = { x86_64: ['amd64', 'x86_64'], aarch64: ['arm64', 'aarch64'] };

/** SPEC 5: `-amd64`/`-arm64` (also `-x86_64`/`-aarch64`) before `.tar` limit an archive to one arch. */
export function archOfImageFile(name: string): HostArch | null {
  const match = /-(amd64|arm64|x86_64|aarch64)\.tar$/.exec(name);
  return match ? SUFFIXES[match[1]!]! : null;
}

/**
 * The image ID and tags of a `docker save` archive, read from its manifest.json without loading it
 * (SPEC 5: an image already present is not loaded again). Reading stops at manifest.json.
 */
export async function readSaveManifest(file: string): Promise<{ id: string | null; tags: string[] }> {
  const extract = tarStream.extract();
  const feeding = pipeline(createReadStream(file), extract);
  // Stopping early destroys the pipeline; that rejection is expected and must not go unhandled.
  feeding.catch(() => undefined);
  let manifest: Array<{ Config?: string; RepoTags?: string[] | null }> | null = null;
  for await (const entry of extract) {
    if (entry.header.name === 'manifest.json') {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      manifest = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      break;
    }
    entry.resume();
  }
  if (manifest === null) {
    await feeding;
    throw new Error('no manifest.json in the archive');
  }
  const hex = /([0-9a-f]{64})/.exec(manifest[0]?.Config ?? '')?.[1];
  return { id: hex ? `sha256:${hex}` : null, tags: manifest.flatMap((item) => item.RepoTags ?? []) };
}

/** The image ID a reference points to, or null when it is not present. */
async function imageId(reference: string): Promise<string | null> {
  const output = await runCommand('docker', ['image', 'inspect', '--format', '{{.Id}}', reference], {
    timeoutMs: 30_000,
  });
  if (output.code === 0) return output.stdout.trim();
  if (/no such image/i.test(output.stderr)) return null;
  throw new NuwaxError(
    ErrorCodes.E_DOCKER,
    `docker image inspect ${reference} failed: ${output.stderr.trim().slice(-500)}`,
  );
}

async function tagImage(source: string, target: string): Promise<void> {
  const output = await runCommand('docker', ['tag', source, target], { timeoutMs: 30_000 });
  if (output.code !== 0)
    throw new NuwaxError(ErrorCodes.E_IMAGE_LOAD, `docker tag ${source} ${target} failed: ${output.stderr.trim()}`, {
      details: { source, target },
    });
}

/** `app:1.0-amd64` → `app:1.0`; a tag without an arch suffix is returned as it is. */
export function withoutArchSuffix(tag: string): string {
  return tag.replace(/-(amd64|arm64|x86_64|aarch64)$/, '');
}

/**
 * Loads `images/*.tar` for this arch before the services stop (SPEC 5): other arches are
 * skipped, an image whose ID is present is not loaded again, suffixed tags are retagged without the
 * suffix, and a failed load is an error.
 */
export async function loadImages(
  imagesDir: string,
  arch: HostArch,
  options: { signal?: AbortSignal; onProgress?: ProgressListener; timeoutMs?: number } = {},
): Promise<{ loaded: string[]; skipped: string[] }> {
  const files = (await readdir(imagesDir).catch(whenAbsent([] as string[])))
    .filter((name) => name.endsWith('.tar'))
    .sort();
  const report = createProgressReporter('loading_images', files.length, options.onProgress, { unit: 'images' });
  const loaded: string[] = [];
  const skipped: string[] = [];
  for (const [index, name] of files.entries()) {
    throwIfAborted(options.signal);
    const fileArch = archOfImageFile(name);
    if (fileArch && fileArch !== arch) {
      skipped.push(name);
      continue;
    }
    const file = path.join(imagesDir, name);
    const { id, tags } = await readSaveManifest(file).catch((error: unknown) => {
      throw new NuwaxError(
        ErrorCodes.E_IMAGE_LOAD,
        `${name} is not a docker save archive: ${(error as Error).message}`,
        { cause: error, details: { file: name } },
      );
    });
    if (id && (await imageId(id)) !== null) {
      skipped.push(name);
      // The ID is present but a tag may point elsewhere (an older build under the same tag): re-point it.
      for (const tag of tags) await tagImage(id, tag);
    } else {
      const run = await runCommand('docker', ['load', '-i', file], {
        timeoutMs: options.timeoutMs ?? 600_000,
        signal: options.signal,
      });
      if (run.code !== 0)
        throw new NuwaxError(
          ErrorCodes.E_IMAGE_LOAD,
          `docker load of ${name} failed: ${run.stderr.trim().slice(-500)}`,
          { details: { file: name, stderr: run.stderr.slice(-2000) } },
        );
      loaded.push(name);
    }
    for (const tag of tags) {
      const plain = withoutArchSuffix(tag);
      if (plain !== tag) await tagImage(id ?? tag, plain);
    }
    report.update(index + 1);
  }
  report.finish(files.length);
  return { loaded, skipped };
}

/**
 * Every image the compose file names exists and is built for this host (SPEC 5, 8): checked while
 * the old version still runs, so a missing or wrong-arch image never takes the services down.
 */
export async function checkImages(images: string[], arch: HostArch): Promise<void> {
  for (const image of images) {
    const inspect = await runCommand('docker', ['image', 'inspect', '--format', '{{.Architecture}}', image], {
      timeoutMs: 30_000,
    });
    if (inspect.code !== 0) {
      if (!/no such image/i.test(inspect.stderr))
        throw new NuwaxError(
          ErrorCodes.E_DOCKER,
          `docker image inspect ${image} failed: ${inspect.stderr.trim().slice(-500)}`,
          { details: { image } },
        );
      throw new NuwaxError(
        ErrorCodes.E_IMAGE_MISSING,
        `The image ${image} named by the compose file is not present (no registry is used: it must come in images/)`,
        { details: { image } },
      );
    }
    const imageArch = inspect.stdout.trim();
    if (!DOCKER_ARCH[arch].includes(imageArch)) {
      throw new NuwaxError(
        ErrorCodes.E_IMAGE_ARCH,
        `The image ${image} is built for ${imageArch}, this host is ${arch}: refusing before anything stops`,
        { details: { image, imageArch, arch } },
      );
    }
  }
}
