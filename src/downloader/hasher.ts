import { createHash, type Hash } from 'node:crypto';
import { hashPrefix } from './files.js';

/**
 * Who computes the SHA-256 of a file that the main thread writes (WriteSink in sink.ts): this
 * thread as the blocks go by (InlineHasher), or a thread that follows the file on disk
 * (FollowHasher in follower.ts). Either way the digest is of exactly the bytes in the file.
 */
export interface SinkHasher {
  /** Each block, in file order, just before it is written. */
  update(block: Buffer): void;
  /** The file's bytes below `end` are written, and stay as they are until the next cut. */
  written(end: number): void;
  /** The file is about to be cut to `offset` (0 for a restart): forget what was hashed past it. */
  cut(offset: number): void;
  /** The file was cut to `offset` and holds what an earlier attempt or process wrote below it: cover [0, offset). */
  resume(offset: number): Promise<void>;
  /** SHA-256 of [0, end) of the file, once every write below `end` is done. */
  digest(end: number): Promise<string>;
  close(): Promise<void>;
}

/** node:crypto on the main thread, in the same pass as the write; a resume re-hashes the prefix first. */
export class InlineHasher implements SinkHasher {
  private hash: Hash = createHash('sha256');
  /** Bytes covered by `hash`. */
  private position = 0;

  constructor(private readonly file: string) {}

  update(block: Buffer): void {
    this.hash.update(block);
    this.position += block.length;
  }

  written(): void {}

  cut(offset: number): void {
    if (this.position <= offset) return;
    this.hash = createHash('sha256');
    this.position = 0;
  }

  async resume(offset: number): Promise<void> {
    if (this.position === offset) return;
    this.hash = await hashPrefix(this.file, offset);
    this.position = offset;
  }

  async digest(): Promise<string> {
    return this.hash.copy().digest('hex');
  }

  async close(): Promise<void> {}
}
