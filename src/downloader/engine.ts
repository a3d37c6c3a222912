import { availableParallelism } from 'node:os';
import { DirectSink } from './direct-sink.js';
import { FollowHasher } from './follower.js';
import { InlineHasher } from './hasher.js';
import { type Sink, WorkerSink } from './sink.js';

/**
 * Where SHA-256 runs (SPEC 7: in the same pass as the write).
 * - 'inline': the main thread receives, hashes and writes.
 * - 'follow': the main thread receives and writes; a thread hashes the file by following it
 *   (follower.ts). On a resume it hashes the prefix on disk while the rest is being fetched.
 * - 'worker': the main thread copies the body into shared slots; a thread hashes and writes each.
 */
export type Engine = 'inline' | 'follow' | 'worker';

/**
 * Measured on the 2-core VM this was built on, 1 GiB from nginx on 127.0.0.1, whole process
 * (start, download, fsync, exit), medians of 5, interleaved, while other work loaded the machine
 * (load 1-4); curl+openssl is `curl -o F && openssl dgst F`, `curl -C -` for the resume:
 *
 *   resume from 50 %   follow 2.08-2.33 s,  92 MiB   inline 2.87-3.05 s, 103 MiB   curl+openssl 1.90-2.24 s
 *   fresh download     follow 2.90-3.16 s,  91-93    inline 3.35-3.57 s,  81-85    worker 4.21 s, 96 MiB
 *                                                                                  curl+openssl 2.71-2.86 s
 *
 * - A resume follows: the prefix is hashed on the other core while the rest is fetched, instead
 *   of before it (inline); and its reads reuse one buffer instead of a stream's fresh ones.
 * - With more than two cores, follow: on two it already beat the worker by 30 % with 5 MiB less,
 *   as it never waits for the hash until the end (the worker hands over each 1 MiB block and
 *   waits for it back: two cross-thread wake-ups per block, costly in a VM).
 * - A fresh download on two cores or fewer stays inline: follow is ~10 % faster there, but its
 *   thread (a V8 isolate of its own) costs 8-10 MiB more, above a peak already over its goal.
 *   When the other core is busy (an edge box runs its application), the thread buys little.
 *
 * Where the peak goes (issue 3; bench child, 1 GiB, /proc/self/status and process.memoryUsage()
 * sampled every 10-20 ms): Node itself starts at 42 MiB (35 of them the node binary's pages);
 * importing undici adds ~10, pino (through log) ~7, better-sqlite3 and the store ~3: 64.5 MiB
 * before the first byte. An inline download adds ~10 (V8's young generation grows from 8 to 16
 * MiB reserved; the socket buffers between two collections, runtime.ts; the 1 MiB batch), the
 * follow thread ~10-11 more: an idle worker alone costs 14 MiB at its peak (8 anonymous: isolate,
 * internal modules, malloc arena; 6 of the binary's pages), whatever its resourceLimits or its
 * module format (ESM or CommonJS). After collecting every 2 MiB and limiting the thread's heap,
 * medians of 3: inline 74.6 MiB, follow 84.6 MiB (before: 79.5 and 95.6). Follow stays over
 * 80 MiB by about the thread's fixed cost, so a fresh download on two cores stays inline. A
 * batch of 256 KiB instead of 1 MiB saved ~1 MiB more, within the noise, for 4x the writev calls.
 */
export function defaultEngine(resumeFrom: number): Engine {
  return resumeFrom > 0 || availableParallelism() > 2 ? 'follow' : 'inline';
}

export function createSink(file: string, engine: Engine): Sink {
  if (engine === 'worker') return new WorkerSink(file);
  if (engine === 'follow') return new DirectSink(file, (onError) => new FollowHasher(file, onError));
  return new DirectSink(file, () => new InlineHasher(file));
}
