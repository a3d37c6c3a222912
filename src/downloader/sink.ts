import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { type NuwaxError, toNuwaxError } from '../errors/index.js';
import type { WorkerReply, WorkerRequest } from './worker-protocol.js';

/** Dirty pages are flushed in the background every so often, so the final fsync is short. */
export const BACKGROUND_SYNC_BYTES = 64 * 1024 * 1024;

/**
 * Where the body goes: hashed and written in one pass (SPEC 7). Two kinds: DirectSink
 * (direct-sink.ts) writes on the main thread and hashes there or by following the file; the
 * slot sinks below hand 1 MiB blocks to a worker thread that hashes and writes them. engine.ts
 * picks one.
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

/**
 * The socket's chunks are copied into a few 1 MiB slots; a full slot is hashed and written as one
 * block. Four slots bound the memory whatever the file size; when all are busy the caller pauses
 * the socket (backpressure).
 */
const SLOT_BYTES = 1 << 20;
const SLOT_COUNT = 4;

abstract class SlotSink implements Sink {
  onDrain: () => void = () => {};
  onError: (error: NuwaxError) => void = () => {};
  written = 0;
  failure: NuwaxError | undefined;
  protected readonly views: Buffer[];
  private readonly free: number[];
  private current = -1;
  private filled = 0;
  private readonly pending: Buffer[] = [];
  private inFlight = 0;
  private flushWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private syncedAt = 0;
  private backgroundSync: Promise<void> | undefined;
  private syncHandle: FileHandle | undefined;

  constructor(
    protected readonly file: string,
    views: Buffer[],
  ) {
    this.views = views;
    this.free = views.map((_, index) => index);
  }

  protected abstract submit(slot: number, length: number): void;
  abstract prepare(offset: number): Promise<void>;
  abstract restart(): void;
  abstract digest(): Promise<string>;
  abstract sync(): Promise<void>;
  protected abstract shutdown(): Promise<void>;

  write(chunk: Buffer): boolean {
    if (this.failure) return false;
    if (this.pending.length > 0) {
      this.pending.push(chunk);
      return false;
    }
    const rest = this.place(chunk);
    if (rest === null) return true;
    this.pending.push(rest);
    return false;
  }

  flush(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.flushWaiters.push({ resolve, reject });
      this.settle();
    });
  }

  async close(): Promise<void> {
    await this.backgroundSync;
    await this.syncHandle?.close();
    this.syncHandle = undefined;
    await this.shutdown();
  }

  /** Resets the slot bookkeeping (after a restart the data taken so far is obsolete). */
  protected resetPosition(end: number): void {
    this.written = end;
    this.syncedAt = end;
  }

  protected fail(error: unknown): void {
    if (this.failure) return;
    this.failure = toNuwaxError(error);
    this.pending.length = 0;
    this.onError(this.failure);
    this.settle();
  }

  protected release(slot: number, end: number): void {
    this.inFlight -= 1;
    this.free.push(slot);
    this.written = end;
    this.maybeSyncInBackground();
    while (this.pending.length > 0) {
      const rest = this.place(this.pending.shift()!);
      if (rest !== null) {
        this.pending.unshift(rest);
        return;
      }
    }
    if (this.flushWaiters.length > 0) this.settle();
    else this.onDrain();
  }

  private place(chunk: Buffer): Buffer | null {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.current < 0) {
        const slot = this.free.pop();
        if (slot === undefined) return offset === 0 ? chunk : chunk.subarray(offset);
        this.current = slot;
        this.filled = 0;
      }
      const copied = chunk.copy(this.views[this.current]!, this.filled, offset);
      offset += copied;
      this.filled += copied;
      if (this.filled === SLOT_BYTES) this.submitCurrent();
    }
    return null;
  }

  private submitCurrent(): void {
    if (this.current < 0) return;
    const slot = this.current;
    const length = this.filled;
    this.current = -1;
    this.filled = 0;
    if (length === 0) {
      this.free.push(slot);
      return;
    }
    this.inFlight += 1;
    this.submit(slot, length);
  }

  /** Resolves flush() once nothing is pending, the last partial slot is submitted and all writes are done. */
  private settle(): void {
    if (this.flushWaiters.length === 0) return;
    if (!this.failure) {
      if (this.pending.length > 0) return;
      this.submitCurrent();
      if (this.inFlight > 0) return;
    } else if (this.inFlight > 0) return;
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const waiter of waiters) {
      if (this.failure) waiter.reject(this.failure);
      else waiter.resolve();
    }
  }

  /** fdatasync through a second descriptor, in libuv's pool, while the download goes on. */
  private maybeSyncInBackground(): void {
    if (this.backgroundSync || this.written - this.syncedAt < BACKGROUND_SYNC_BYTES) return;
    this.syncedAt = this.written;
    this.backgroundSync = (async () => {
      this.syncHandle ??= await open(this.file, constants.O_RDONLY);
      await this.syncHandle.datasync();
    })()
      .catch((error: unknown) => this.fail(error))
      .finally(() => {
        this.backgroundSync = undefined;
      });
  }
}

/** Hashing and writing in a worker thread: the main thread only reads the socket and copies. */
export class WorkerSink extends SlotSink {
  private readonly worker: Worker;
  private readonly waiters: Array<(reply: WorkerReply) => void> = [];
  private closed = false;

  constructor(file: string) {
    const slots = Array.from({ length: SLOT_COUNT }, () => new SharedArrayBuffer(SLOT_BYTES));
    super(
      file,
      slots.map((slot) => Buffer.from(slot)),
    );
    this.worker = new Worker(new URL('./hash-worker.js', import.meta.url), { workerData: { file, slots } });
    this.worker.on('message', (reply: WorkerReply) => this.receive(reply));
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`The hashing thread exited (${code})`));
      for (const waiter of this.waiters.splice(0)) waiter({ type: 'closed', end: this.written });
    });
  }

  private receive(reply: WorkerReply): void {
    if (reply.type === 'error') {
      this.fail(Object.assign(new Error(reply.message), { code: reply.code }));
      return;
    }
    if (reply.type === 'written') {
      this.release(reply.slot, reply.end);
      return;
    }
    this.waiters.shift()?.(reply);
  }

  private request(message: WorkerRequest): Promise<WorkerReply> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.worker.postMessage(message);
    });
  }

  protected submit(slot: number, length: number): void {
    this.worker.postMessage({ type: 'block', slot, length } satisfies WorkerRequest);
  }

  async prepare(offset: number): Promise<void> {
    await this.flush();
    const reply = await this.request({ type: 'prepare', offset });
    if (this.failure) throw this.failure;
    this.resetPosition(reply.end);
  }

  restart(): void {
    void this.request({ type: 'prepare', offset: 0 });
    this.resetPosition(0);
  }

  async digest(): Promise<string> {
    await this.flush();
    const reply = await this.request({ type: 'digest' });
    if (this.failure) throw this.failure;
    return reply.type === 'digest' ? reply.hex : '';
  }

  async sync(): Promise<void> {
    await this.flush();
    await this.request({ type: 'sync' });
    if (this.failure) throw this.failure;
  }

  protected async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.request({ type: 'close' });
    await this.worker.terminate();
  }
}
