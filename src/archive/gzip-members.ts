/**
 * Parallel gzip for our own archives (backups at least as fast as pigz on two cores).
 * The tar bytes are cut into blocks of 1 MiB; each is compressed on its own as one gzip member in
 * libuv's threadpool, and the members are written in order. Concatenated members are one valid
 * gzip stream (RFC 1952 §2.2): GNU tar, gzip and zlib read them as usual. Each member carries its
 * own length in an extra field (subfield "NX", as BGZF does with "BC"), so that our reader can
 * find the members without inflating and decompress several at once. Memory stays flat: a few
 * blocks in flight whatever the archive size.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';
import vm from 'node:vm';
import zlib from 'node:zlib';
import { ErrorCodes, NuwaxError, throwIfAborted } from '../errors/index.js';
import { garbageMeter } from './collect.js';

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

export const MEMBER_INPUT = 1 << 20;
/** A member we wrote inflates to MEMBER_INPUT; anything much larger is not ours, or hostile. */
const MAX_MEMBER_OUTPUT = 4 * MEMBER_INPUT;
const MAX_MEMBER_SIZE = 2 * MEMBER_INPUT;
/** 10-byte gzip header + XLEN (2) + subfield id (2) + length (2) + value (4). */
const HEADER = 20;

/**
 * zlib hands every member back in a fresh 1.1 MiB buffer, and the few still queued when a young
 * collection runs are promoted: left to V8, they pile up (~40 MiB) until external memory forces a
 * full collection. A full collection of the small heap every few members costs ~1 ms.
 */
const COLLECT_EVERY_MEMBERS = 2;
let collector: ((options: { type: 'major' }) => void) | null | undefined;

/** Needs `--expose-gc`, which the CLI entry sets (src/cli/main.ts); without it a no-op. */
function collectGarbage(): void {
  if (collector === undefined) {
    const found: unknown = vm.runInNewContext('typeof gc === "function" ? gc : null');
    collector = typeof found === 'function' ? (found as (options: { type: 'major' }) => void) : null;
  }
  collector?.({ type: 'major' });
}

/** Compression jobs in flight: one per core (at most 4, libuv's default threadpool size). */
function parallelism(): number {
  return Math.max(
    1,
    Math.min(4, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length),
  );
}

/** Turns zlib's plain 10-byte gzip header into ours, with the member's total length in FEXTRA. */
function frameMember(member: Buffer): Buffer[] {
  if (member[0] !== 0x1f || member[1] !== 0x8b || member[3] !== 0)
    throw new NuwaxError(ErrorCodes.E_INTERNAL, 'zlib wrote an unexpected gzip header');
  const head = Buffer.alloc(HEADER);
  member.copy(head, 0, 0, 10);
  head[3] = 0x04; // FEXTRA
  head.writeUInt16LE(8, 10);
  head.write('NX', 12, 'latin1');
  head.writeUInt16LE(4, 14);
  head.writeUInt32LE(member.length + HEADER - 10, 16);
  return [head, member.subarray(10)];
}

interface Member {
  /** The whole input block, handed back for the next member once this one is written. */
  block: Buffer;
  parts: Buffer[];
}

/**
 * Writes tar bytes as parallel gzip members to an open file, hashing what it writes. At most
 * `bound` members are compressing or waiting to be written; the next block is filled meanwhile,
 * and the input blocks are reused: memory stays the same whatever the archive's size.
 */
export class GzipMemberWriter {
  /** Members compressing or waiting to be written, at most: one per core plus one. */
  readonly bound = parallelism() + 1;
  /** The most members that were ever pending at once (the tests check it against `bound`). */
  peakPending = 0;
  private block: Buffer = Buffer.allocUnsafe(MEMBER_INPUT);
  private used = 0;
  private readonly pending: Array<Promise<Member>> = [];
  private readonly spare: Buffer[] = [];
  private readonly hash: Hash = createHash('sha256');
  private written = 0;
  private members = 0;

  constructor(
    private readonly handle: FileHandle,
    private readonly level: number,
    private readonly signal?: AbortSignal,
  ) {}

  async write(data: Buffer): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      const count = Math.min(MEMBER_INPUT - this.used, data.length - offset);
      data.copy(this.block, this.used, offset, offset + count);
      this.used += count;
      offset += count;
      if (this.used === MEMBER_INPUT) await this.dispatch();
    }
  }

  /**
   * One read of at most `length` bytes of `fd` at `position`, straight into the current block (no
   * copy, no buffer per file). Synchronous: from the page cache a read costs less than the round
   * trip through libuv's threadpool, whose threads are busy compressing. Returns the bytes read, 0 at
   * the end of the file.
   */
  async read(fd: number, position: number, length: number): Promise<number> {
    const bytesRead = readSync(fd, this.block, this.used, Math.min(MEMBER_INPUT - this.used, length), position);
    this.used += bytesRead;
    if (this.used === MEMBER_INPUT) await this.dispatch();
    return bytesRead;
  }

  private async dispatch(): Promise<void> {
    throwIfAborted(this.signal);
    const block = this.block;
    const input = block.subarray(0, this.used);
    this.block = this.spare.pop() ?? Buffer.allocUnsafe(MEMBER_INPUT);
    this.used = 0;
    // One output chunk per member: zlib's default 16 KiB chunks cost a threadpool round trip each.
    const job = gzip(input, { level: this.level, chunkSize: MEMBER_INPUT + (MEMBER_INPUT >> 3) }).then((member) => ({
      block,
      parts: frameMember(member),
    }));
    // Awaited in order below; a failure before then must not be an unhandled rejection.
    job.catch(() => undefined);
    this.pending.push(job);
    this.peakPending = Math.max(this.peakPending, this.pending.length);
    while (this.pending.length >= this.bound) await this.writeOldest();
  }

  private async writeOldest(): Promise<void> {
    const { block, parts } = await this.pending.shift()!;
    for (const part of parts) this.hash.update(part);
    await this.handle.writev(parts);
    this.written += parts[0]!.length + parts[1]!.length;
    this.spare.push(block);
    this.members += 1;
    if (this.members % COLLECT_EVERY_MEMBERS === 0) collectGarbage();
  }

  /** Flushes the last block and waits for every member; returns the compressed size and sha256. */
  async end(): Promise<{ size: number; sha256: string }> {
    if (this.used > 0) await this.dispatch();
    while (this.pending.length > 0) await this.writeOldest();
    return { size: this.written, sha256: this.hash.digest('hex') };
  }
}

/** Reads a gzip member header at `position`: the member's total length when it is one of ours. */
function memberLength(head: Buffer, bytes: number): number | null {
  if (bytes < HEADER || head[0] !== 0x1f || head[1] !== 0x8b || head[2] !== 8 || head[3] !== 0x04) return null;
  if (head.readUInt16LE(10) !== 8 || head.toString('latin1', 12, 14) !== 'NX' || head.readUInt16LE(14) !== 4)
    return null;
  return head.readUInt32LE(16);
}

export interface InflateOptions {
  signal?: AbortSignal | undefined;
  /** Receives every compressed byte in file order, e.g. to hash the archive in the same pass. */
  onRaw?: (chunk: Buffer) => void;
  /** Bytes of the file read so far, for progress. */
  onRead?: (bytes: number) => void;
}

/**
 * The decompressed bytes of a gzip file, in order. Our own archives are inflated several members
 * at a time; any other gzip file streams through one zlib inflater.
 */
export async function* inflateFile(file: string, options: InflateOptions = {}): AsyncGenerator<Buffer> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(HEADER);
    const { bytesRead } = await handle.read(head, 0, HEADER, 0);
    if (memberLength(head, bytesRead) === null) {
      yield* inflateStream(file, options);
      return;
    }
    yield* inflateMembers(handle, size, options);
  } finally {
    await handle.close();
  }
}

async function* inflateMembers(handle: FileHandle, size: number, options: InflateOptions): AsyncGenerator<Buffer> {
  const pending: Array<Promise<Buffer>> = [];
  const inFlight = parallelism() + 1;
  const collect = garbageMeter();
  let position = 0;
  try {
    while (position < size) {
      throwIfAborted(options.signal);
      const head = Buffer.alloc(HEADER);
      const { bytesRead } = await handle.read(head, 0, HEADER, position);
      const length = memberLength(head, bytesRead);
      if (length === null || length <= HEADER || length > MAX_MEMBER_SIZE)
        throw new NuwaxError(ErrorCodes.E_ARCHIVE, `Corrupt gzip member at byte ${position}`, {
          details: { position },
        });
      if (position + length > size)
        throw new NuwaxError(
          ErrorCodes.E_ARCHIVE,
          `The archive is truncated: a gzip member at byte ${position} needs ${length} bytes, ` +
            `${size - position} are left`,
          { details: { position } },
        );
      const member = Buffer.allocUnsafe(length);
      const read = await handle.read(member, 0, length, position);
      if (read.bytesRead !== length)
        throw new NuwaxError(ErrorCodes.E_ARCHIVE, `The archive is truncated at byte ${position + read.bytesRead}`);
      options.onRaw?.(member);
      position += length;
      options.onRead?.(position);
      const job = gunzip(member, { maxOutputLength: MAX_MEMBER_OUTPUT, chunkSize: MEMBER_INPUT + 1024 });
      job.catch(() => undefined);
      pending.push(job);
      if (pending.length >= inFlight) {
        const inflated = await pending.shift()!;
        yield inflated;
        collect(inflated.length);
      }
    }
    while (pending.length > 0) yield await pending.shift()!;
  } catch (error) {
    if (error instanceof NuwaxError) throw error;
    throw new NuwaxError(ErrorCodes.E_ARCHIVE, `Corrupt gzip data: ${(error as Error).message}`, { cause: error });
  }
}

async function* inflateStream(file: string, options: InflateOptions): AsyncGenerator<Buffer> {
  const source = createReadStream(file, {
    highWaterMark: 1 << 20,
    signal: options.signal,
  });
  const inflater = zlib.createGunzip({ chunkSize: 1 << 18 });
  let read = 0;
  const collect = garbageMeter();
  source.on('data', (chunk: string | Buffer) => {
    if (typeof chunk === 'string') return;
    options.onRaw?.(chunk);
    read += chunk.length;
    options.onRead?.(read);
  });
  source.on('error', (error) => inflater.destroy(error));
  source.pipe(inflater);
  try {
    for await (const chunk of inflater) {
      yield chunk as Buffer;
      collect((chunk as Buffer).length);
    }
  } catch (error) {
    if (error instanceof NuwaxError) throw error;
    throw new NuwaxError(ErrorCodes.E_ARCHIVE, `Corrupt gzip data: ${(error as Error).message}`, { cause: error });
  } finally {
    source.destroy();
    inflater.destroy();
  }
}

/** The raw bytes of a file (an uncompressed tar), reported to `onRaw` like inflateFile does. */
export async function* readPlain(file: string, options: InflateOptions = {}): AsyncGenerator<Buffer> {
  const source = createReadStream(file, {
    highWaterMark: 1 << 20,
    signal: options.signal,
  });
  let read = 0;
  for await (const chunk of source) {
    options.onRaw?.(chunk as Buffer);
    read += (chunk as Buffer).length;
    options.onRead?.(read);
    yield chunk as Buffer;
  }
}
