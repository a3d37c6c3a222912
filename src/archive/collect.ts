import vm from 'node:vm';

type Collector = (options: { type: 'minor' | 'major' }) => void;
let collector: Collector | null | undefined;

/**
 * Inflating allocates fresh buffers for every member read and inflated; they are garbage at once
 * but live outside V8's heap, which collects them only after ~64 MiB of such memory. A
 * young-generation collection every few MiB frees them while they are few. Needs `--expose-gc`
 * (set by the CLI entry, src/cli/main.ts); without it this is a no-op and only the peak is higher.
 */
function collectYoungGarbage(): void {
  if (collector === undefined) {
    const found: unknown = vm.runInNewContext('typeof gc === "function" ? gc : null');
    collector = typeof found === 'function' ? (found as Collector) : null;
  }
  collector?.({ type: 'minor' });
}

/** Inflated bytes between two young-generation collections (scripts/bench/README.md, "restore"). */
export const COLLECT_EVERY_BYTES = 4 * 1024 * 1024;

/**
 * Counts inflated bytes and collects every COLLECT_EVERY_BYTES. Not more often: a buffer still in
 * the pipeline (members in flight, small files being written) survives two collections and moves
 * to the old generation, which only a full collection frees.
 */
export function garbageMeter(): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < COLLECT_EVERY_BYTES) return;
    since = 0;
    collectYoungGarbage();
  };
}
