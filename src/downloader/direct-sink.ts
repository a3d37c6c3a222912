import { closeSync, constants, fdatasync, ftruncateSync, openSync, writevSync } from 'node:fs';
import { type NuwaxError, toNuwaxError } from '../errors/index.js';
import type { SinkHasher } from './hasher.js';
import { BACKGROUND_SYNC_BYTES, type Sink } from './sink.js';

/** Socket chunks gathered for one writev: few system calls, little memory held. */
const BATCH_BYTES = 1024 * 1024;
/** IOV_MAX: also bounds what a trickle of tiny chunks could hold. */
const BATCH_CHUNKS = 1024;

/**
 * The main thread writes the body itself: it keeps the socket's chunks (undici hands each one out
 * in a buffer of its own, never reused, as its own body streams rely on) and writes each 1 MiB of
 * them with one synchronous writev, at the offset where the file ends. The hasher hashes them on
 * this thread (InlineHasher) or follows the file from another one (FollowHasher).
 *
 * A write into the page cache takes well under a millisecond per MiB, cheaper than a copy and
 * two cross-thread wake-ups per MiB (scripts/bench/README.md); when the disk cannot keep up the
 * event loop waits, for as long as the kernel throttles the write. The dirty pages are flushed in
 * the background every 64 MiB, which keeps that throttling rare and the final fsync short.
 */
export class DirectSink implements Sink {
  onDrain: () => void = () => {};
  onError: (error: NuwaxError) => void = () => {};
  /** Bytes in the file (the batch not yet written is not counted). */
  written = 0;
  failure: NuwaxError | undefined;
  private readonly hasher: SinkHasher;
  private batch: Buffer[] = [];
  private batched = 0;
  private fd = -1;
  private syncedAt = 0;
  private backgroundSync: Promise<void> | undefined;

  constructor(
    private readonly file: string,
    hasher: (onError: (error: Error) => void) => SinkHasher,
  ) {
    this.hasher = hasher((error) => this.fail(error));
  }

  /** Never asks to pause (the writes are synchronous); false only once writing has failed. */
  write(chunk: Buffer): boolean {
    if (this.failure) return false;
    this.batch.push(chunk);
    this.batched += chunk.length;
    if (this.batched >= BATCH_BYTES || this.batch.length >= BATCH_CHUNKS) this.writeBatch();
    return !this.failure;
  }

  async flush(): Promise<void> {
    this.writeBatch();
    if (this.failure) throw this.failure;
  }

  async prepare(offset: number): Promise<void> {
    await this.flush();
    try {
      this.hasher.cut(offset);
      ftruncateSync(this.descriptor(), offset);
      this.written = offset;
      this.syncedAt = offset;
      await this.hasher.resume(offset);
    } catch (error) {
      this.fail(error);
    }
    if (this.failure) throw this.failure;
  }

  restart(): void {
    this.batch = [];
    this.batched = 0;
    this.hasher.cut(0);
    this.written = 0;
    this.syncedAt = 0;
    try {
      ftruncateSync(this.descriptor(), 0);
    } catch (error) {
      this.fail(error);
    }
  }

  async digest(): Promise<string> {
    await this.flush();
    const hex = await this.hasher.digest(this.written);
    if (this.failure) throw this.failure;
    return hex;
  }

  async sync(): Promise<void> {
    await this.flush();
    await datasync(this.descriptor());
  }

  async close(): Promise<void> {
    await this.backgroundSync;
    await this.hasher.close();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private descriptor(): number {
    // Positional writes (no O_APPEND): the file is cut to where the hash ends, then written on.
    if (this.fd < 0) this.fd = openSync(this.file, constants.O_RDWR | constants.O_CREAT, 0o644);
    return this.fd;
  }

  private writeBatch(): void {
    if (this.batched === 0 || this.failure) return;
    const chunks = this.batch;
    this.batch = [];
    this.batched = 0;
    for (const chunk of chunks) this.hasher.update(chunk);
    try {
      writeAll(this.descriptor(), chunks, this.written, (count) => {
        this.written += count;
      });
    } catch (error) {
      this.fail(error);
    }
    this.hasher.written(this.written);
    this.syncInBackground();
  }

  private fail(error: unknown): void {
    if (this.failure) return;
    this.failure = toNuwaxError(error);
    this.batch = [];
    this.batched = 0;
    this.onError(this.failure);
  }

  /** fdatasync in libuv's pool while the download goes on. */
  private syncInBackground(): void {
    if (this.backgroundSync || this.written - this.syncedAt < BACKGROUND_SYNC_BYTES) return;
    this.syncedAt = this.written;
    this.backgroundSync = datasync(this.fd)
      .catch((error: unknown) => this.fail(error))
      .finally(() => {
        this.backgroundSync = undefined;
      });
  }
}

/** writev until every byte is written (a short write goes on where it stopped; an error throws); empties `chunks`. */
function writeAll(fd: number, chunks: Buffer[], position: number, onWritten: (count: number) => void): void {
  let at = position;
  while (chunks.length > 0) {
    let count = writevSync(fd, chunks, at);
    if (count === 0) throw Object.assign(new Error(`A write at ${at} wrote nothing`), { code: 'EIO' });
    at += count;
    onWritten(count);
    while (chunks.length > 0 && count >= chunks[0]!.length) count -= chunks.shift()!.length;
    if (count > 0) chunks[0] = chunks[0]!.subarray(count);
  }
}

function datasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
}
