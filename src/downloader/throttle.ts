/**
 * Optional rate limit (SPEC 7, `[download] rate_limit`): a byte budget that refills at `rate` per
 * second, with at most one second of unused budget saved up, so a pause (a retry's backoff) is not
 * followed by a burst. take() says how long to hold the socket before reading on.
 */
export class RateLimiter {
  private anchor: number;
  private bytes = 0;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.anchor = now();
  }

  /** Records `count` bytes; returns the milliseconds to wait before reading more (0: read on). */
  take(count: number): number {
    const now = this.now();
    const dueAt = this.anchor + (this.bytes / this.bytesPerSecond) * 1000;
    if (dueAt < now - 1000) {
      this.anchor = now - 1000;
      this.bytes = 0;
    }
    this.bytes += count;
    return Math.max(0, Math.ceil(this.anchor + (this.bytes / this.bytesPerSecond) * 1000 - now));
  }
}

/** Exponential backoff with jitter: the n-th retry waits between half and all of base·2ⁿ, capped. */
export function backoffDelay(
  retry: number,
  backoff: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** retry);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
