import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type NuwaxError, toNuwaxError } from '../errors/index.js';
import { hashPrefix } from './files.js';
import type { WorkerReply, WorkerRequest } from './worker-protocol.js';

/**
 * Where the body goes: hashed and written in one pass (SPEC 7). The socket's chunks are copied
 * into a few 1 MiB slots; a full slot is hashed and written as one block. Four slots bound the
 * memory whatever the file size; when all are busy the caller pauses the socket (backpressure).
 */
export const SLOT_BYTES = 1 << 20;
const SLOT_COUNT = 4;
/** Dirty pages are flushed in the background every so often, so the final fsync is short. */
const BACKGROUND_SYNC_BYTES = 64 * 1024 * 1024;

export type Engine = 'worker' | 'inline';

/**
 * Measured with scripts/bench/download.ts on the 2-core machine this was built on, while other
 * work kept it busy (load 7-13, as on an edge box that runs its application): 1 GiB took 4.7 s
 * inline against 8.6 s with the worker (medians of 3; curl+openssl 5.3 s), and the worker costs
 * ~10 MiB more (its own V8 isolate). Handing each block to another thread only pays when a core
 * is idle, so the worker is used only with more than two cores.
 */
export function defaultEngine(): Engine {
  return availableParallelism() > 2 ? 'worker' : 'inline';
}

export interface Sink {
  /** Bytes of the partial file written so far (the resume offset). */
  readonly written: number;
  /** Called when the sink can take data again after write() returned false. */
  onDrain: () => void;
  /** Called once when writing failed (e.g. ENOSPC); the attempt should stop. */
  onError: (error: NuwaxError) => void;
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

abstract class SlotSink implements Sink {
  onDrain: () => void = () => {};
  onError: (error: NuwaxError) => void = () => {};
  written = 0;
  protected failure: NuwaxError | undefined;
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
class WorkerSink extends SlotSink {
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

/** Same pass on one thread: hashing here, the writes in libuv's pool (one core, or by choice). */
class InlineSink extends SlotSink {
  private hash: Hash = createHash('sha256');
  private position = 0;
  private handle: FileHandle | undefined;
  private tail: Promise<void> = Promise.resolve();

  constructor(file: string) {
    super(
      file,
      Array.from({ length: SLOT_COUNT }, () => Buffer.allocUnsafeSlow(SLOT_BYTES)),
    );
  }

  private async fileHandle(): Promise<FileHandle> {
    this.handle ??= await open(this.file, constants.O_RDWR | constants.O_CREAT, 0o644);
    return this.handle;
  }

  private enqueue(operation: () => Promise<void>): Promise<void> {
    this.tail = this.tail.then(operation).catch((error: unknown) => this.fail(error));
    return this.tail;
  }

  protected submit(slot: number, length: number): void {
    const view = this.views[slot]!;
    this.hash.update(view.subarray(0, length));
    const position = this.position;
    this.position += length;
    void this.enqueue(async () => {
      const handle = await this.fileHandle();
      let done = 0;
      while (done < length && !this.failure) done += (await handle.write(view, done, length - done, position + done)).bytesWritten;
    }).finally(() => this.release(slot, position + length));
  }

  async prepare(offset: number): Promise<void> {
    await this.flush();
    await this.enqueue(async () => {
      await (await this.fileHandle()).truncate(offset);
      if (this.position !== offset) {
        this.hash = await hashPrefix(this.file, offset);
        this.position = offset;
      }
    });
    if (this.failure) throw this.failure;
    this.resetPosition(offset);
  }

  restart(): void {
    this.hash = createHash('sha256');
    this.position = 0;
    this.resetPosition(0);
    void this.enqueue(async () => (await this.fileHandle()).truncate(0));
  }

  async digest(): Promise<string> {
    await this.flush();
    await this.tail;
    if (this.failure) throw this.failure;
    return this.hash.copy().digest('hex');
  }

  async sync(): Promise<void> {
    await this.flush();
    await this.enqueue(async () => (await this.fileHandle()).datasync());
    if (this.failure) throw this.failure;
  }

  protected async shutdown(): Promise<void> {
    await this.tail;
    await this.handle?.close();
    this.handle = undefined;
  }
}

export function createSink(file: string, engine: Engine): Sink {
  return engine === 'worker' ? new WorkerSink(file) : new InlineSink(file);
}
