/**
 * Hand-made `docker save` archives in both formats, so thin/rebuild are tested without an engine:
 * the legacy one (manifest.json, `<id>/layer.tar`, Docker 20.10) and the OCI layout (index.json,
 * `blobs/sha256/...`, Docker 25+), the latter with a gzip layer whose blob digest is not its diff_id.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

type Entry = { name: string; body: Buffer } | { name: string; dir: true };

export async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const entry of entries) {
    if ('dir' in entry) pack.entry({ name: entry.name, type: 'directory', mode: 0o755, mtime: new Date(0) });
    else pack.entry({ name: entry.name, mode: 0o644, mtime: new Date(0) }, entry.body);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A layer tar holding one file of `size` bytes made from `seed` (so two seeds differ). */
export async function layer(seed: string, size = 64 * 1024): Promise<Buffer> {
  const body = Buffer.alloc(size);
  for (let offset = 0; offset < size; offset += 32)
    createHash('sha256').update(`${seed}:${offset}`).digest().copy(body, offset);
  return tarOf([{ name: `files/${seed}`, body }]);
}

function config(layers: Buffer[], label: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: { build: label } },
      rootfs: { type: 'layers', diff_ids: layers.map((item) => `sha256:${sha256(item)}`) },
    }),
  );
}

/** The legacy format, as Docker 20.10 writes it. */
export async function legacyArchive(file: string, tag: string, layers: Buffer[]): Promise<void> {
  const configBody = config(layers, tag);
  const configName = `${sha256(configBody)}.json`;
  const entries: Entry[] = [];
  const layerNames: string[] = [];
  for (const [index, item] of layers.entries()) {
    const id = sha256(Buffer.from(`${tag}/${index}/${sha256(item)}`));
    entries.push({ name: `${id}/`, dir: true });
    entries.push({ name: `${id}/VERSION`, body: Buffer.from('1.0') });
    entries.push({ name: `${id}/layer.tar`, body: item });
    layerNames.push(`${id}/layer.tar`);
  }
  entries.push({ name: configName, body: configBody });
  entries.push({
    name: 'manifest.json',
    body: Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: layerNames }])),
  });
  writeFileSync(file, await tarOf(entries));
}

/** The OCI layout without manifest.json (index.json only); `gzipped` layers are stored compressed. */
export async function ociArchive(file: string, tag: string, layers: Buffer[], gzipped: number[] = []): Promise<void> {
  const blobs = new Map<string, Buffer>();
  const put = (body: Buffer): string => {
    const digest = `sha256:${sha256(body)}`;
    blobs.set(digest, body);
    return digest;
  };
  const configBody = config(layers, tag);
  const configDigest = put(configBody);
  const layerDescriptors = layers.map((item, index) => {
    const stored = gzipped.includes(index) ? gzipSync(item, { level: 1 }) : item;
    return {
      mediaType: gzipped.includes(index)
        ? 'application/vnd.oci.image.layer.v1.tar+gzip'
        : 'application/vnd.oci.image.layer.v1.tar',
      digest: put(stored),
      size: stored.length,
    };
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: configBody.length },
      layers: layerDescriptors,
    }),
  );
  const manifestDigest = put(manifest);
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: manifestDigest,
        size: manifest.length,
        annotations: { 'io.containerd.image.name': tag, 'org.opencontainers.image.ref.name': tag.split(':')[1] },
      },
    ],
  };
  writeFileSync(
    file,
    await tarOf([
      { name: 'blobs/', dir: true },
      { name: 'blobs/sha256/', dir: true },
      ...[...blobs].map(([digest, body]) => ({ name: `blobs/${digest.replace(':', '/')}`, body })),
      { name: 'index.json', body: Buffer.from(JSON.stringify(index)) },
      { name: 'oci-layout', body: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    ]),
  );
}
