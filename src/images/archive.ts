import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { indexTar, type RawEntry, readSmallEntry, type TarIndex } from './tar-index.js';

/** A layer of an image in a `docker save` archive: the entry that holds it and what identifies it. */
export interface LayerRef {
  entry: RawEntry;
  /** sha256 of the UNCOMPRESSED layer tar, from the image config's rootfs.diff_ids. */
  diffId: string;
  /** For an OCI blob, its name's digest (it may be compressed); null in the legacy format. */
  blobDigest: string | null;
}

export interface ImageRef {
  tags: string[];
  /** The image ID: the digest of its config. */
  id: string;
  layers: LayerRef[];
}

export interface ImageArchive {
  file: string;
  index: TarIndex;
  format: 'legacy' | 'oci';
  images: ImageRef[];
}

interface ManifestItem {
  Config?: string;
  RepoTags?: string[] | null;
  Layers?: string[];
}

interface OciDescriptor {
  mediaType?: string;
  digest?: string;
  annotations?: Record<string, string>;
}

function invalid(file: string, message: string): NuwaxError {
  return new NuwaxError(ErrorCodes.E_IMAGE_LOAD, `${file} is not a docker save archive: ${message}`, {
    details: { file },
  });
}

function normalName(name: string): string {
  return name.replace(/^\.\//, '');
}

async function readJson<T>(file: string, index: TarIndex, name: string): Promise<T> {
  const entry = index.entries.find((item) => normalName(item.name) === name);
  if (!entry) throw invalid(file, `${name} is missing`);
  try {
    return JSON.parse((await readSmallEntry(file, entry)).toString('utf8')) as T;
  } catch (error) {
    if (error instanceof NuwaxError) throw error;
    throw invalid(file, `${name} is not JSON`);
  }
}

function blobName(digest: string): string {
  return `blobs/${digest.replace(':', '/')}`;
}

async function imageOf(
  file: string,
  index: TarIndex,
  configName: string,
  layerNames: string[],
  tags: string[],
): Promise<ImageRef> {
  const config = await readJson<{ rootfs?: { diff_ids?: string[] } }>(file, index, configName);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layerNames.length)
    throw invalid(file, `${configName} names ${diffIds.length} layers, the manifest ${layerNames.length}`);
  const hex = /([0-9a-f]{64})/.exec(configName)?.[1];
  const layers = layerNames.map((name, position) => {
    const entry = index.entries.find((item) => normalName(item.name) === name);
    if (!entry) throw invalid(file, `the layer ${name} is missing`);
    const blob = /^blobs\/(sha256)\/([0-9a-f]{64})$/.exec(name);
    return { entry, diffId: diffIds[position]!, blobDigest: blob ? `${blob[1]}:${blob[2]}` : null };
  });
  return { tags, id: hex ? `sha256:${hex}` : configName, layers };
}

/**
 * Reads what a `docker save` archive holds without reading its layers: the legacy format
 * (manifest.json, `<id>/layer.tar`; Docker 20.10) and the OCI layout (index.json,
 * `blobs/sha256/...`; Docker 25+, which writes a manifest.json too, read first when present).
 */
export async function readImageArchive(file: string, signal?: AbortSignal): Promise<ImageArchive> {
  const index = await indexTar(file, signal);
  const names = new Set(index.entries.map((entry) => normalName(entry.name)));
  const format = names.has('index.json') && names.has('oci-layout') ? 'oci' : 'legacy';
  const images: ImageRef[] = [];
  if (names.has('manifest.json')) {
    const manifest = await readJson<ManifestItem[]>(file, index, 'manifest.json');
    if (!Array.isArray(manifest)) throw invalid(file, 'manifest.json is not a list');
    for (const item of manifest) {
      if (!item.Config) throw invalid(file, 'an image in manifest.json has no Config');
      images.push(await imageOf(file, index, item.Config, item.Layers ?? [], item.RepoTags ?? []));
    }
  } else if (format === 'oci') {
    const top = await readJson<{ manifests?: OciDescriptor[] }>(file, index, 'index.json');
    for (const descriptor of top.manifests ?? []) {
      if (!descriptor.digest) continue;
      const manifest = await readJson<{ config?: OciDescriptor; layers?: OciDescriptor[] }>(
        file,
        index,
        blobName(descriptor.digest),
      );
      if (!manifest.config?.digest) throw invalid(file, `the manifest ${descriptor.digest} has no config`);
      const tag = descriptor.annotations?.['io.containerd.image.name'];
      images.push(
        await imageOf(
          file,
          index,
          blobName(manifest.config.digest),
          (manifest.layers ?? []).map((layer) => blobName(layer.digest ?? '')),
          tag ? [tag] : [],
        ),
      );
    }
  } else {
    throw invalid(file, 'neither manifest.json nor an OCI index.json');
  }
  return { file, index, format, images };
}
