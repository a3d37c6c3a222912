import vm from 'node:vm';

type Collector = (options: { type: 'minor' | 'major' }) => void;
let collector: Collector | null | undefined;

/**
 * Node allocates a fresh 64 KiB buffer for every socket read; they are garbage at once but live
 * outside V8's heap, which collects them only after ~64 MiB of such memory. A young-generation
 * collection every few MiB frees them while they are few. It needs `--expose-gc`, which the CLI
 * entry sets (src/cli/main.ts); without it this is a no-op and only the peak memory is higher.
 */
export function collectSocketGarbage(): void {
  if (collector === undefined) {
    const found: unknown = vm.runInNewContext('typeof gc === "function" ? gc : null');
    collector = typeof found === 'function' ? (found as Collector) : null;
  }
  collector?.({ type: 'minor' });
}

/** Bytes read between two young-generation collections (scripts/bench/README.md has the trade-off). */
export const COLLECT_EVERY_BYTES = 2 * 1024 * 1024;
