import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { sha256File } from '../fsutil/index.js';
import { type ImageArchive, type LayerRef, readImageArchive } from './archive.js';
import { paddingOf, readRawHeader } from './tar-index.js';
import {
  type BaseLayer,
  bodyName,
  fileHeader,
  POISON_MANIFEST,
  THIN_DESCRIPTION,
  THIN_KIND,
  type ThinDescription,
  type ThinEntry,
} from './thin-format.js';

/** An archive of the old release, with its path relative to the deployment folder. */
export interface OldArchive {
  file: string;
  relative: string;
}

export interface ThinResult {
  /** false: every layer changed, the archive is shipped whole and nothing was written. */
  thin: boolean;
  fullSize: number;
  thinSize: number;
  baseLayers: number;
  shippedLayers: number;
}

/** How a layer is known on both sides: its blob digest in OCI, its diff_id (uncompressed) in legacy. */
export function storedDigest(layer: LayerRef): string {
  return layer.blobDigest ?? layer.diffId;
}

/** Every layer the old release's archives hold, by stored digest, with where it came from. */
async function oldLayers(olds: OldArchive[], signal?: AbortSignal): Promise<Map<string, BaseLayer>> {
  const known = new Map<string, BaseLayer>();
  for (const old of olds) {
    const archive = await readImageArchive(old.file, signal).catch((error: unknown) => {
      // An old file under images/ that is not an image archive simply offers no layers.
      if (error instanceof NuwaxError && error.code === ErrorCodes.E_IMAGE_LOAD) return null;
      throw error;
    });
    for (const image of archive?.images ?? []) {
      for (const layer of image.layers) {
        const digest = storedDigest(layer);
        const names = image.tags.length ? image.tags : [image.id];
        const entry = known.get(digest);
        if (entry) {
          if (entry.archive === old.relative)
            entry.images.push(...names.filter((name) => !entry.images.includes(name)));
          continue;
        }
        known.set(digest, {
          digest,
          diffId: layer.diffId,
          size: layer.entry.size,
          archive: old.relative,
          images: names,
        });
      }
    }
  }
  return known;
}

async function* thinBytes(
  archive: ImageArchive,
  description: ThinDescription,
  shipped: number[],
): AsyncGenerator<Buffer> {
  const json = Buffer.from(`${JSON.stringify(description)}\n`);
  for (const [name, body] of [
    [THIN_DESCRIPTION, json],
    ['manifest.json', POISON_MANIFEST],
  ] as const) {
    yield fileHeader(name, body.length);
    yield body;
    yield Buffer.alloc(paddingOf(body.length));
  }
  for (const position of shipped) {
    const entry = archive.index.entries[position]!;
    yield fileHeader(bodyName(position), entry.size);
    yield* createReadStream(archive.file, {
      start: entry.dataStart,
      end: entry.dataStart + entry.size - 1,
      highWaterMark: 1 << 20,
    });
    yield Buffer.alloc(paddingOf(entry.size));
  }
  yield Buffer.alloc(1024);
}

/**
 * Writes, for the new release's image archive `file`, a thin archive holding every entry but the
 * layers the old release's archives already hold (compared by digest), with a description of the
 * left-out layers; the box rebuilds the full archive byte for byte from it (see rebuild.ts).
 * Nothing is written when no layer can be left out.
 */
export async function makeThinArchive(
  file: string,
  olds: OldArchive[],
  output: string,
  options: { signal?: AbortSignal } = {},
): Promise<ThinResult> {
  const archive = await readImageArchive(file, options.signal);
  const known = await oldLayers(olds, options.signal);
  const layersByEntry = new Map(archive.images.flatMap((image) => image.layers.map((layer) => [layer.entry, layer])));
  const entries: ThinEntry[] = [];
  const shipped: number[] = [];
  const base = new Map<string, BaseLayer>();
  let shippedLayers = 0;
  for (const [position, entry] of archive.index.entries.entries()) {
    const header = (await readRawHeader(file, entry)).toString('base64');
    const layer = layersByEntry.get(entry);
    const from = layer && known.get(storedDigest(layer));
    if (from && from.size === entry.size) {
      base.set(from.digest, from);
      entries.push({ header, size: entry.size, body: 'base', digest: from.digest });
      continue;
    }
    if (layer) shippedLayers += 1;
    entries.push({ header, size: entry.size, body: 'thin' });
    if (entry.size > 0) shipped.push(position);
  }
  const fullSize = archive.index.fileSize;
  if (base.size === 0) return { thin: false, fullSize, thinSize: fullSize, baseLayers: 0, shippedLayers };
  const description: ThinDescription = {
    kind: THIN_KIND,
    version: 1,
    size: fullSize,
    sha256: (await sha256File(file, options.signal)).sha256,
    images: archive.images.map((image) => ({ id: image.id, tags: image.tags })),
    entries,
    trailer: fullSize - archive.index.end,
    base: [...base.values()],
  };
  const temporary = `${output}.partial`;
  let thinSize = 0;
  const counted = async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      thinSize += chunk.length;
      yield chunk;
    }
  };
  try {
    await pipeline(thinBytes(archive, description, shipped), counted, createWriteStream(temporary), {
      signal: options.signal,
    });
    await rename(temporary, output);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return { thin: true, fullSize, thinSize, baseLayers: entries.filter((e) => e.body === 'base').length, shippedLayers };
}
