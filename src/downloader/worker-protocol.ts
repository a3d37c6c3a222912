/**
 * Between a download and the thread that follows its file (follower.ts, follow-worker.ts): a
 * message port for the digest and the close, and a few shared words for what changes with every
 * block. `bell` counts the main thread's changes (a wait on its last value wakes on any of them);
 * `asleep` is set by the thread while it waits, so the main thread wakes it only then, and only
 * once the limit reaches `wakeAt`; `position` packs `epoch << LIMIT_BITS | limit` into one word,
 * so a limit is never read with the epoch of another.
 */
export interface FollowWords {
  bell: Int32Array;
  asleep: Int32Array;
  position: BigInt64Array;
  wakeAt: BigInt64Array;
}

export const FOLLOW_WORDS_BYTES = 24;

export function followWords(shared: SharedArrayBuffer): FollowWords {
  return {
    bell: new Int32Array(shared, 0, 1),
    asleep: new Int32Array(shared, 4, 1),
    position: new BigInt64Array(shared, 8, 1),
    wakeAt: new BigInt64Array(shared, 16, 1),
  };
}

export const LIMIT_BITS = 48n;
export const LIMIT_MASK = (1n << LIMIT_BITS) - 1n;

export type FollowRequest = { type: 'digest'; end: number; epoch: number } | { type: 'close' };

export type FollowReply =
  | { type: 'digest'; hex: string; end: number }
  | { type: 'error'; code: string; message: string };
