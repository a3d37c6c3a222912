import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import type { SinkHasher } from './hasher.js';
import {
  FOLLOW_WORDS_BYTES,
  type FollowReply,
  type FollowRequest,
  type FollowWords,
  followWords,
  LIMIT_BITS,
} from './worker-protocol.js';
import { type ErrorCode, ErrorCodes, NuwaxError } from '../errors/index.js';

/**
 * The thread's own V8 heap (peak RSS). It holds one 256 KiB read buffer (outside the
 * heap) and a few small objects per read, so a young generation of 1 MiB and a small old one are
 * plenty; V8's defaults size them for a general-purpose isolate. Measured: ~1 MiB less at the peak
 * (1 GiB, medians of 3, 86.1 -> 84.6 MiB); most of the thread's ~10 MiB is Node's own bootstrap of
 * a worker (its isolate, its internal modules, its malloc arena), which no limit here changes.
 */
const FOLLOW_LIMITS = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16, codeRangeSizeMb: 2, stackSizeMb: 1 };

/**
 * Hashing by following the file: a thread (follow-worker.ts) reads the partial file from byte 0
 * and hashes it, never past what the main thread's writes have put there, while the main thread
 * only receives and writes. node:crypto cannot export a hash state, so on a resume the prefix on
 * disk must be hashed again; here that happens on the other core while the rest is fetched,
 * instead of before the fetch on the main thread (InlineHasher).
 *
 * The follower reads what the file holds, not a copy handed over with each block: the digest is
 * of exactly the bytes in the file, and the main thread never waits for the hash until the end.
 */
export class FollowHasher implements SinkHasher {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly words: FollowWords;
  private epoch = 0n;
  private limit = 0;
  private failure: Error | undefined;
  private asked: { resolve: (hex: string) => void; reject: (error: Error) => void } | undefined;
  private closed = false;

  constructor(
    file: string,
    private readonly onError: (error: Error) => void,
  ) {
    const shared = new SharedArrayBuffer(FOLLOW_WORDS_BYTES);
    this.words = followWords(shared);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.port.on('message', (reply: FollowReply) => this.receive(reply));
    this.worker = new Worker(new URL('./follow-worker.js', import.meta.url), {
      workerData: { file, shared, port: port2 },
      transferList: [port2],
      resourceLimits: FOLLOW_LIMITS,
    });
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`The hashing thread exited (${code})`));
    });
  }

  update(): void {}

  written(end: number): void {
    if (end > this.limit) this.publish(this.epoch, end);
  }

  cut(offset: number): void {
    // A new epoch before the cut: whatever the thread reads from now on in the old epoch is dropped.
    if (this.limit > offset) this.publish(this.epoch + 1n, offset);
  }

  async resume(offset: number): Promise<void> {
    // The thread hashes the prefix [0, offset) on its own, while the main thread fetches the rest.
    if (offset !== this.limit) this.publish(this.epoch, offset);
  }

  digest(end: number): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.asked = { resolve, reject };
      this.send({ type: 'digest', end, epoch: Number(this.epoch) });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.send({ type: 'close' });
    await this.worker.terminate();
    this.port.close();
    this.asked?.reject(new Error('The download was closed before its hash was known'));
    this.asked = undefined;
  }

  private publish(epoch: bigint, limit: number): void {
    const cut = epoch !== this.epoch;
    this.epoch = epoch;
    this.limit = limit;
    Atomics.store(this.words.position, 0, (epoch << LIMIT_BITS) | BigInt(limit));
    this.ring(cut || BigInt(limit) >= Atomics.load(this.words.wakeAt, 0));
  }

  private send(message: FollowRequest): void {
    this.port.postMessage(message);
    this.ring(true);
  }

  /** A wake-up is a system call (and a costly one in a VM): only when the thread sleeps and has a reason to wake. */
  private ring(wake: boolean): void {
    Atomics.add(this.words.bell, 0, 1);
    if (wake && Atomics.load(this.words.asleep, 0) !== 0) Atomics.notify(this.words.bell, 0);
  }

  private receive(reply: FollowReply): void {
    if (reply.type === 'error') {
      const ours = Object.hasOwn(ErrorCodes, reply.code);
      this.fail(
        ours
          ? new NuwaxError(reply.code as ErrorCode, reply.message)
          : Object.assign(new Error(reply.message), { code: reply.code }),
      );
      return;
    }
    this.asked?.resolve(reply.hex);
    this.asked = undefined;
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.asked?.reject(error);
    this.asked = undefined;
    this.onError(error);
  }
}
