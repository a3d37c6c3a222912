import { open } from 'node:fs/promises';
import { ErrorCodes, NuwaxError, throwIfAborted } from '../errors/index.js';

const BLOCK = 512;

/**
 * One entry of a tar file as it lies on disk: `headerStart..dataStart` are its header blocks (with
 * any pax or GNU long-name blocks before them), `dataStart..dataStart+size` its body. Knowing the
 * offsets lets a layer be copied by range, never read into memory.
 */
export interface RawEntry {
  name: string;
  /** The tar type flag: '0' file, '5' directory, ... */
  type: string;
  headerStart: number;
  dataStart: number;
  size: number;
}

export interface TarIndex {
  entries: RawEntry[];
  /** Where the end-of-archive blocks start; the rest of the file is zeros. */
  end: number;
  fileSize: number;
}

function cString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? length : nul).toString('utf8');
}

/** Octal, or GNU base-256 when the high bit of the first byte is set (sizes of 8 GiB and more). */
function numeric(block: Buffer, offset: number, length: number): number {
  const field = block.subarray(offset, offset + length);
  if (field[0]! & 0x80) {
    let value = field[0]! & 0x7f;
    for (let index = 1; index < length; index += 1) value = value * 256 + field[index]!;
    return value;
  }
  const text = cString(block, offset, length).trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function validChecksum(block: Buffer): boolean {
  let sum = 0;
  for (let index = 0; index < BLOCK; index += 1) sum += index >= 148 && index < 156 ? 0x20 : block[index]!;
  return sum === numeric(block, 148, 8);
}

/** The `path` record of a pax extended header body, if any. */
function paxPath(body: Buffer): string | null {
  let offset = 0;
  while (offset < body.length) {
    const space = body.indexOf(0x20, offset);
    if (space === -1) break;
    const length = Number.parseInt(body.subarray(offset, space).toString('ascii'), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = body.subarray(space + 1, offset + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (record.slice(0, equals) === 'path') return record.slice(equals + 1);
    offset += length;
  }
  return null;
}

function corrupt(file: string, message: string): NuwaxError {
  return new NuwaxError(ErrorCodes.E_IMAGE_LOAD, `${file} is not a readable tar archive: ${message}`, {
    details: { file },
  });
}

/** Reads only the headers of a tar file (bodies are skipped by offset), so indexing costs no layer reads. */
export async function indexTar(file: string, signal?: AbortSignal): Promise<TarIndex> {
  const handle = await open(file, 'r');
  try {
    const fileSize = (await handle.stat()).size;
    const entries: RawEntry[] = [];
    const block = Buffer.alloc(BLOCK);
    let offset = 0;
    let headerStart = 0;
    let longName: string | null = null;
    while (true) {
      throwIfAborted(signal);
      const { bytesRead } = await handle.read(block, 0, BLOCK, offset);
      if (bytesRead < BLOCK) throw corrupt(file, `it ends inside a header at byte ${offset}`);
      if (block.every((byte) => byte === 0)) return { entries, end: headerStart, fileSize };
      if (!validChecksum(block)) throw corrupt(file, `bad header checksum at byte ${offset}`);
      const type = String.fromCharCode(block[156] || 0x30);
      const size = numeric(block, 124, 12);
      const dataStart = offset + BLOCK;
      const next = dataStart + Math.ceil(size / BLOCK) * BLOCK;
      if (next > fileSize) throw corrupt(file, `an entry at byte ${offset} runs past the end`);
      if (type === 'x' || type === 'L') {
        // Metadata for the next entry: its name; the blocks stay part of that entry's raw header.
        const body = Buffer.alloc(size);
        await handle.read(body, 0, size, dataStart);
        longName = type === 'L' ? cString(body, 0, size) : (paxPath(body) ?? longName);
      } else if (type === 'g' || type === 'K') {
        // A global header or a long link name: nothing here needs it, it is copied as it is.
      } else {
        const prefix = cString(block, 345, 155);
        const short = cString(block, 0, 100);
        const name = longName ?? (prefix ? `${prefix}/${short}` : short);
        entries.push({ name, type, headerStart, dataStart, size });
        longName = null;
        headerStart = next;
      }
      offset = next;
    }
  } finally {
    await handle.close();
  }
}

/** The body of a small entry (a manifest, a config); layers are never read this way. */
export async function readSmallEntry(file: string, entry: RawEntry, limit = 16 * 1024 * 1024): Promise<Buffer> {
  if (entry.size > limit) throw corrupt(file, `${entry.name} is larger than ${limit} bytes`);
  const handle = await open(file, 'r');
  try {
    const body = Buffer.alloc(entry.size);
    await handle.read(body, 0, entry.size, entry.dataStart);
    return body;
  } finally {
    await handle.close();
  }
}

/** The raw header blocks of an entry, to write it again byte for byte. */
export async function readRawHeader(file: string, entry: RawEntry): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const header = Buffer.alloc(entry.dataStart - entry.headerStart);
    await handle.read(header, 0, header.length, entry.headerStart);
    return header;
  } finally {
    await handle.close();
  }
}

export function paddingOf(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}
