import type { NuwaxError } from '../errors/index.js';

/** Dirty pages are flushed in the background every so often, so the final fsync is short. */
export const BACKGROUND_SYNC_BYTES = 64 * 1024 * 1024;

/**
 * Where the body goes: hashed and written in one pass (SPEC 7). DirectSink (direct-sink.ts)
 * writes on the main thread and hashes there or by following the file; engine.ts picks how.
 */

export interface Sink {
  /** Bytes of the partial file written so far (the resume offset). */
  readonly written: number;
  /** Called when the sink can take data again after write() returned false. */
  onDrain: () => void;
  /** Called once when writing failed (e.g. ENOSPC); the attempt should stop. */
  onError: (error: NuwaxError) => void;
  /**
   * Set for good once writing or hashing failed. onError reaches only the attempt listening at the
   * time; a failure between attempts (a background fdatasync, the hashing thread during a backoff)
   * is found here, since write() would only ever answer false after it.
   */
  readonly failure: NuwaxError | undefined;
  /** Makes the hash cover exactly [0, offset) of the file and truncates the file there. */
  prepare(offset: number): Promise<void>;
  /** Truncates to zero and resets the hash, ordered before any following write (a 200 to a Range request). */
  restart(): void;
  /** Takes the chunk (always); false means "pause the source until onDrain". */
  write(chunk: Buffer): boolean;
  /** Writes out everything taken so far; rejects with the write failure, if any. */
  flush(): Promise<void>;
  digest(): Promise<string>;
  sync(): Promise<void>;
  close(): Promise<void>;
}
