import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { createProgressReporter, type ProgressListener } from '../events/index.js';
import { ErrorCodes, NuwaxError, throwIfAborted } from '../errors/index.js';
import { runCommand } from './exec.js';

export type HostArch = 'x86_64' | 'aarch64';

const SUFFIXES: Record<string, HostArch> = { amd64: 'x86_64', x86_64: 'x86_64', arm64: 'aarch64', aarch64: 'aarch64' };
const DOCKER_ARCH: Record<HostArch, string[]> = { x86_64: ['amd64', 'x86_64'], aarch64: ['arm64', 'aarch64'] };

/** SPEC 5: `-amd64`/`-arm64` (also `-x86_64`/`-aarch64`) before `.tar` limit an archive to one arch. */
export function archOfImageFile(name: string): HostArch | null {
  const match = /-(amd64|arm64|x86_64|aarch64)\.tar$/.exec(name);
  return match ? SUFFIXES[match[1]!]! : null;
}

/** The image ID and tags of a `docker save` archive, read from its manifest.json without loading it. */
async function readSaveManifest(file: string): Promise<{ id: string | null; tags: string[] }> {
  const extract = tarStream.extract();
  const feeding = pipeline(createReadStream(file), extract);
  feeding.catch(() => undefined);
  let manifest: Array<{ Config?: string; RepoTags?: string[] | null }> = [];
  for await (const entry of extract) {
    if (entry.header.name === 'manifest.json') {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      manifest = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } else {
      for await (const _chunk of entry) {
        /* skipped */
      }
    }
  }
  await feeding;
  const config = manifest[0]?.Config ?? '';
  const hex = /([0-9a-f]{64})/.exec(config)?.[1];
  return { id: hex ? `sha256:${hex}` : null, tags: manifest.flatMap((item) => item.RepoTags ?? []) };
}

async function imageExists(reference: string): Promise<boolean> {
  return (await runCommand('docker', ['image', 'inspect', reference], { timeoutMs: 30_000 })).code === 0;
}

/**
 * Loads `images/*.tar` for this arch before the services stop (SPEC 5, issue 5): other arches are
 * skipped, an image whose ID is present is not loaded again, suffixed tags are retagged without the
 * suffix, and a failed load is an error.
 */
export async function loadImages(imagesDir: string, arch: HostArch, options: { signal?: AbortSignal; onProgress?: ProgressListener; timeoutMs?: number } = {}): Promise<{ loaded: string[]; skipped: string[] }> {
  const files = (await readdir(imagesDir).catch(() => [] as string[])).filter((name) => name.endsWith('.tar')).sort();
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
      throw new NuwaxError(ErrorCodes.E_IMAGE_LOAD, `${name} is not a docker save archive: ${(error as Error).message}`, { cause: error });
    });
    if (id && (await imageExists(id))) {
      skipped.push(name);
      for (const tag of tags) if (!(await imageExists(tag))) await runCommand('docker', ['tag', id, tag], { timeoutMs: 30_000 });
    } else {
      const run = await runCommand('docker', ['load', '-i', file], { timeoutMs: options.timeoutMs ?? 600_000, ...(options.signal ? { signal: options.signal } : {}) });
      if (run.code !== 0) throw new NuwaxError(ErrorCodes.E_IMAGE_LOAD, `docker load of ${name} failed: ${run.stderr.trim().slice(-500)}`, { details: { file: name } });
      loaded.push(name);
    }
    for (const tag of tags) {
      const plain = tag.replace(/-(amd64|arm64|x86_64|aarch64)$/, '');
      if (plain !== tag) {
        const retag = await runCommand('docker', ['tag', tag, plain], { timeoutMs: 30_000 });
        if (retag.code !== 0) throw new NuwaxError(ErrorCodes.E_IMAGE_LOAD, `docker tag ${tag} ${plain} failed: ${retag.stderr.trim()}`);
      }
    }
    report.update(index + 1);
  }
  report.finish(files.length);
  return { loaded, skipped };
}

/** Every image the compose file names exists and is built for this host: a wrong-arch image never takes the running services down. */
export async function checkImages(images: string[], arch: HostArch): Promise<void> {
  for (const image of images) {
    const inspect = await runCommand('docker', ['image', 'inspect', '--format', '{{.Architecture}}', image], { timeoutMs: 30_000 });
    if (inspect.code !== 0) throw new NuwaxError(ErrorCodes.E_IMAGE_MISSING, `The image ${image} named by the new compose file is not present (no registry is used: it must come in images/)`, { details: { image } });
    const imageArch = inspect.stdout.trim();
    if (!DOCKER_ARCH[arch].includes(imageArch)) {
      throw new NuwaxError(ErrorCodes.E_IMAGE_ARCH, `The image ${image} is built for ${imageArch}, this host is ${arch}: refusing before anything stops`, { details: { image, imageArch, arch } });
    }
  }
}
