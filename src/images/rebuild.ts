import { createHash } from 'node:crypto';
import { type FileHandle, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, NuwaxError, throwIfAborted } from '../errors/index.js';
import { checkRelativePath, exists, whenAbsent } from '../fsutil/index.js';
import { runCommand } from '../runtime/index.js';
import { readImageArchive } from './archive.js';
import { indexTar, paddingOf, type RawEntry, type TarIndex } from './tar-index.js';
import { storedDigest } from './thin.js';
import { bodyName, readThinDescription, type ThinDescription } from './thin-format.js';

/** Writes `docker save` of some images into a file (the box's running images, when their archive is gone). */
export type SaveImages = (references: string[], file: string, signal?: AbortSignal) => Promise<void>;

export interface RebuildOptions {
  signal?: AbortSignal;
  /** Defaults to the docker CLI. */
  save?: SaveImages;
}

export interface RebuildResult {
  /** The archives rebuilt, by file name. */
  rebuilt: string[];
  /** Bytes of layers taken from the box rather than downloaded. */
  reusedBytes: number;
}

type Located = { file: string; entry: RawEntry };

export const dockerSave: SaveImages = async (references, file, signal) => {
  const run = await runCommand('docker', ['save', '-o', file, ...references], {
    timeoutMs: 1_800_000,
    signal,
  });
  if (run.code !== 0)
    throw new NuwaxError(
      ErrorCodes.E_BASE_MISMATCH,
      `docker save ${references.join(' ')} failed: ${run.stderr.trim().slice(-500)}`,
      { details: { references } },
    );
};

function mismatch(name: string, message: string, details: Record<string, unknown>): NuwaxError {
  return new NuwaxError(ErrorCodes.E_BASE_MISMATCH, `${name}: ${message}`, { details: { image: name, ...details } });
}

/** Adds every layer of a box archive to `found`, by stored digest; an unreadable archive adds nothing. */
async function addLayersOf(file: string, found: Map<string, Located>, signal?: AbortSignal): Promise<void> {
  const archive = await readImageArchive(file, signal).catch((error: unknown) => {
    if (error instanceof NuwaxError && error.code === ErrorCodes.E_IMAGE_LOAD) return null;
    throw error;
  });
  for (const image of archive?.images ?? [])
    for (const layer of image.layers)
      if (!found.has(storedDigest(layer))) found.set(storedDigest(layer), { file, entry: layer.entry });
}

/**
 * Finds the base layers on the box: in the old release's archives under docker/ first, then, for
 * what is still missing, in a `docker save` of the old images (written next to the thin archive
 * and removed afterwards by the caller).
 */
async function locateBase(
  name: string,
  description: ThinDescription,
  dockerDir: string,
  scratch: string,
  options: RebuildOptions,
  temporaries: string[],
): Promise<Map<string, Located>> {
  const found = new Map<string, Located>();
  const archives = [...new Set(description.base.map((layer) => layer.archive))];
  for (const relative of archives) {
    const file = path.join(dockerDir, checkRelativePath(relative, 'base archive'));
    if (await exists(file)) await addLayersOf(file, found, options.signal);
  }
  const missing = description.base.filter((layer) => !found.has(layer.digest));
  if (missing.length === 0) return found;
  const references = [...new Set(missing.flatMap((layer) => layer.images))];
  const saved = path.join(scratch, `.${name}.base-${process.pid}.tar`);
  temporaries.push(saved);
  await (options.save ?? dockerSave)(references, saved, options.signal);
  await addLayersOf(saved, found, options.signal);
  const still = description.base.filter((layer) => !found.has(layer.digest));
  if (still.length)
    throw mismatch(name, `${still.length} base layer(s) are neither in the old archives nor in the running images`, {
      missing: still.map((layer) => layer.diffId),
    });
  return found;
}

const COPY_BUFFER = 1 << 20;

/**
 * Writes the full archive: headers from the description, bodies from the thin archive or, for base
 * layers, from the box (hashed as they are copied). One buffer is read into and written from for
 * the whole archive, so memory stays flat whatever the layers weigh: a fresh 1 MiB buffer per read
 * left ~30 MiB of them waiting for a collection.
 */
class ArchiveWriter {
  readonly hash = createHash('sha256');
  size = 0;
  private readonly buffer = Buffer.allocUnsafe(COPY_BUFFER);
  private readonly sources = new Map<string, FileHandle>();

  constructor(
    private readonly output: FileHandle,
    private readonly signal?: AbortSignal,
  ) {}

  async write(bytes: Buffer): Promise<void> {
    this.hash.update(bytes);
    this.size += bytes.length;
    let written = 0;
    while (written < bytes.length)
      written += (await this.output.write(bytes, written, bytes.length - written)).bytesWritten;
  }

  /** Copies `size` bytes of `file` from `start`, feeding each chunk to `check` before it is written. */
  async copy(file: string, start: number, size: number, check?: (chunk: Buffer) => void): Promise<void> {
    let source = this.sources.get(file);
    if (!source) {
      source = await open(file, 'r');
      this.sources.set(file, source);
    }
    let done = 0;
    while (done < size) {
      throwIfAborted(this.signal);
      const { bytesRead } = await source.read(this.buffer, 0, Math.min(COPY_BUFFER, size - done), start + done);
      if (bytesRead === 0)
        throw new NuwaxError(ErrorCodes.E_IMAGE_LOAD, `${file} ends before the layer it indexes`, {
          details: { file },
        });
      const chunk = this.buffer.subarray(0, bytesRead);
      check?.(chunk);
      await this.write(chunk);
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    for (const source of this.sources.values()) await source.close();
    this.sources.clear();
  }
}

async function writeFull(
  writer: ArchiveWriter,
  name: string,
  thin: { file: string; index: TarIndex },
  description: ThinDescription,
  base: Map<string, Located>,
): Promise<void> {
  const bodies = new Map(thin.index.entries.map((entry) => [entry.name, entry]));
  for (const [position, item] of description.entries.entries()) {
    await writer.write(Buffer.from(item.header, 'base64'));
    if (item.body === 'thin') {
      if (item.size > 0) {
        const entry = bodies.get(bodyName(position));
        if (!entry || entry.size !== item.size)
          throw new NuwaxError(ErrorCodes.E_IMAGE_LOAD, `${name}: the thin archive lacks entry ${position}`);
        await writer.copy(thin.file, entry.dataStart, entry.size);
      }
    } else {
      // Checked while copied, before anything reaches docker load: a tampered layer is a base mismatch.
      const located = base.get(item.digest)!;
      const hash = createHash('sha256');
      await writer.copy(located.file, located.entry.dataStart, located.entry.size, (chunk) => hash.update(chunk));
      const actual = `sha256:${hash.digest('hex')}`;
      if (located.entry.size !== item.size || actual !== item.digest)
        throw mismatch(name, `the base layer ${item.digest} on the box has other content (${actual})`, {
          expected: item.digest,
          actual,
          source: located.file,
        });
    }
    await writer.write(Buffer.alloc(paddingOf(item.size)));
  }
  await writer.write(Buffer.alloc(description.trailer));
}

/** Rebuilds one full archive from a thin one; returns the layer bytes taken from the box. */
async function rebuildOne(
  file: string,
  description: ThinDescription,
  index: TarIndex,
  dockerDir: string,
  options: RebuildOptions,
): Promise<number> {
  const name = path.basename(file);
  const temporaries: string[] = [];
  const output = `${file}.rebuilding`;
  temporaries.push(output);
  try {
    const base = await locateBase(name, description, dockerDir, path.dirname(file), options, temporaries);
    const handle = await open(output, 'w');
    const writer = new ArchiveWriter(handle, options.signal);
    try {
      await writeFull(writer, name, { file, index }, description, base);
    } finally {
      await writer.close();
      await handle.close();
    }
    const sha256 = writer.hash.digest('hex');
    if (writer.size !== description.size || sha256 !== description.sha256)
      throw mismatch(name, 'the rebuilt archive does not match the published one', {
        expected: description.sha256,
        actual: sha256,
      });
    await rename(output, file);
    return description.base.reduce((total, layer) => total + layer.size, 0);
  } finally {
    for (const temporary of temporaries) await rm(temporary, { force: true });
  }
}

/**
 * Turns every thin archive in a staged `images/` folder back into the full `docker save` archive
 * (in place, so what is loaded and what ends in docker/images/ is the full one), from the layers
 * the box already has. A missing or different base layer throws E_BASE_MISMATCH: the caller falls
 * back to the full package, as for a patch whose file base does not match.
 */
export async function rebuildThinImages(
  imagesDir: string,
  dockerDir: string,
  options: RebuildOptions = {},
): Promise<RebuildResult> {
  const names = (await readdir(imagesDir).catch(whenAbsent([] as string[])))
    .filter((name) => name.endsWith('.tar'))
    .sort();
  const result: RebuildResult = { rebuilt: [], reusedBytes: 0 };
  for (const name of names) {
    throwIfAborted(options.signal);
    const file = path.join(imagesDir, name);
    if (!(await stat(file)).isFile()) continue;
    const index = await indexTar(file, options.signal);
    const description = await readThinDescription(file, index);
    if (!description) continue;
    result.reusedBytes += await rebuildOne(file, description, index, dockerDir, options);
    result.rebuilt.push(name);
  }
  return result;
}

/** Whether a file is a thin image archive (its first entry is the description). */
export async function isThinArchive(file: string): Promise<boolean> {
  const index = await indexTar(file);
  return (await readThinDescription(file, index)) !== null;
}
