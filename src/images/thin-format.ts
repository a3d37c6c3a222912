import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { type RawEntry, readSmallEntry, type TarIndex } from './tar-index.js';

/** The first entry of a thin archive: what it holds and what the box must already have. */
export const THIN_DESCRIPTION = 'nuwax-thin.json';
/** Bodies shipped in the thin archive are stored under this folder, by their entry's position. */
export const THIN_BODIES = 'nuwax-thin';
export const THIN_KIND = 'nuwax-thin-image-archive';

/**
 * A manifest.json that names a config file no archive holds: `docker load` of a thin archive on its
 * own, or by a nuwax that predates image deltas, fails with this name in its error message instead
 * of loading an incomplete image.
 */
export const POISON_MANIFEST = Buffer.from(
  `${JSON.stringify([
    {
      Config: 'THIS-IS-A-NUWAX-THIN-IMAGE-ARCHIVE.it-needs-a-nuwax-with-image-deltas-to-rebuild-it.json',
      RepoTags: [],
      Layers: [],
    },
  ])}\n`,
);

/** A layer the thin archive leaves out: the box copies it from an image it already has. */
export interface BaseLayer {
  /** sha256 of the bytes as stored in the archive (for an uncompressed layer, its diff_id). */
  digest: string;
  diffId: string;
  size: number;
  /** The old release's archive that held it, relative to the deployment folder (docker/). */
  archive: string;
  /** The old release's images that have it, for `docker save` when the archive is gone. */
  images: string[];
}

export type ThinEntry =
  | { header: string; size: number; body: 'thin' }
  | { header: string; size: number; body: 'base'; digest: string };

export interface ThinDescription {
  kind: typeof THIN_KIND;
  version: 1;
  /** The full archive the box rebuilds, byte for byte. */
  size: number;
  sha256: string;
  images: Array<{ id: string; tags: string[] }>;
  /** Every entry of the full archive in order: its raw header blocks (base64) and where its body is. */
  entries: ThinEntry[];
  /** Bytes after the last entry (the end-of-archive zeros). */
  trailer: number;
  base: BaseLayer[];
}

export function bodyName(position: number): string {
  return `${THIN_BODIES}/${position}`;
}

/** The description of a thin archive, or null when the archive is an ordinary `docker save` one. */
export async function readThinDescription(file: string, index: TarIndex): Promise<ThinDescription | null> {
  const first: RawEntry | undefined = index.entries[0];
  if (!first || first.name !== THIN_DESCRIPTION) return null;
  const description = JSON.parse((await readSmallEntry(file, first, 64 * 1024 * 1024)).toString('utf8'));
  if (description?.kind !== THIN_KIND || description.version !== 1)
    throw new NuwaxError(
      ErrorCodes.E_IMAGE_LOAD,
      `${file} is a thin image archive of an unknown version: a newer nuwax is needed to rebuild it`,
      { details: { file, version: description?.version } },
    );
  return description as ThinDescription;
}

function writeOctal(block: Buffer, value: number, offset: number, width: number): void {
  block.write(value.toString(8).padStart(width - 1, '0'), offset, width - 1, 'ascii');
}

/** A plain ustar file header for the thin archive's own short names. */
export function fileHeader(name: string, size: number): Buffer {
  const block = Buffer.alloc(512);
  block.write(name, 0, 100, 'utf8');
  writeOctal(block, 0o644, 100, 8);
  writeOctal(block, 0, 108, 8);
  writeOctal(block, 0, 116, 8);
  writeOctal(block, size, 124, 12);
  writeOctal(block, 0, 136, 12);
  block.write('0', 156, 1, 'ascii');
  block.write('ustar\u000000', 257, 8, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1');
  return block;
}
