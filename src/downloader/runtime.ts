import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Keeps a download's memory flat and small on an edge box (issue: peak RSS under 80 MiB for 100 MiB
 * and 1 GiB alike). Two things were measured to dominate the peak (heaptrack and /proc/self/smaps,
 * figures in the report of scripts/bench/download.ts):
 *
 * 1. V8 re-compiles undici's llhttp WebAssembly parser with TurboFan once it is hot, on a
 *    background thread; that compilation takes ~35 MiB of zone memory, which glibc keeps. Liftoff
 *    (the baseline wasm compiler) code is fast enough here: for a download llhttp only counts body
 *    bytes, and the download times with and without it differed by less than this busy machine's
 *    run-to-run noise, while the peak fell from ~110 to ~75 MiB. The flag must be set before
 *    undici's first connection in the process, so it is set when this module is loaded (the CLI
 *    imports the downloader at start-up). It only concerns WebAssembly; nuwax runs no other wasm
 *    on a hot path.
 * 2. Node allocates a fresh 64 KiB buffer for every socket read. Those are garbage at once (their
 *    bytes were copied into the sink's slots) but they live outside V8's heap, and V8 collects
 *    them only after ~64 MiB of such "external" memory. A young-generation collection every few
 *    MiB (about 1 ms each) frees them while they are few.
 */
v8.setFlagsFromString('--liftoff-only');

type Collector = (options: { type: 'minor' | 'major' }) => void;
let collector: Collector | null | undefined;

/** Frees the socket buffers read so far (see 2. above); a no-op where gc cannot be exposed. */
export function collectSocketGarbage(): void {
  if (collector === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      collector = vm.runInNewContext('gc') as Collector;
    } catch (error) {
      // Without gc the socket buffers are collected by V8's own external-memory trigger: the
      // download is unaffected, only its peak memory is ~30 MiB higher.
      collector = null;
      void error;
    }
  }
  collector?.({ type: 'minor' });
}

/**
 * Bytes read between two young-generation collections. Each collection frees the socket buffers
 * read since the last one, so this bounds them (they sit in glibc's main heap, which keeps its
 * high-water mark): every 8 MiB the peak was ~5 MiB higher than every 2 MiB (1 GiB, medians of 3:
 * inline 79.5 -> 74.6 MiB, follow 95.6 -> 86.1 MiB). It costs main-thread time: ~0.5 ms per
 * collection, 511 of them per GiB = 0.23-0.33 s, against 0.07-0.14 s every 8 MiB (~5 % of an
 * inline download); every 4 MiB gave ~78 / ~87 MiB for 0.13-0.27 s, every 1 MiB nothing more.
 * The memory goal is the one inline missed by a hair, so 2 MiB.
 */
export const COLLECT_EVERY_BYTES = 2 * 1024 * 1024;
