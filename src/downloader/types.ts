import type { Dispatcher } from 'undici';
import type { ProgressListener } from '../events/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../state/index.js';

export interface DownloadOptions {
  /**
   * Primary first, then mirrors, tried in turn; a host that cannot be reached passes to the next
   * at once, and the backoff applies only to going round the list again.
   */
  urls: string[];
  /** Expected SHA-256, lower-case hex; a "sha256:" prefix is accepted. */
  sha256: string;
  /** Expected size when known. */
  size?: number | null;
  /** Where partial and completed files live, e.g. <home>/cache/downloads. */
  directory: string;
  store: Store;
  signal?: AbortSignal;
  /** Retries per URL for retryable failures (5xx, resets, stalls, short bodies); default 5. */
  retries?: number;
  /** No byte for this long aborts the request (then it is retried); default 30 s. */
  stallTimeoutMs?: number;
  /**
   * A trickle is a failed attempt: fewer bytes than this per second over a whole window ends it
   * with E_STALL (then it is resumed). Default 1 KiB/s over 60 s; bytesPerSecond 0 turns it off.
   */
  minRate?: { bytesPerSecond: number; windowMs: number };
  /** Bytes per second; 0 or undefined = no limit. */
  rateLimit?: number;
  /** Exponential backoff with jitter between retries; default 500 ms doubling up to 30 s. */
  backoff?: { baseMs: number; maxMs: number };
  onProgress?: ProgressListener;
  logger?: Logger;
  /** e.g. an Agent with a custom CA; redirects are followed on top of it. */
  dispatcher?: Dispatcher;
  /** Final name hint (its extension is kept); default derived from the hash and the URL. */
  fileName?: string;
  /** Redirects followed per request; default 5. */
  maxRedirections?: number;
}

/** A package the user chose to install unverified ([security] allow_unverified): no hash to compare with. */
export type UnverifiedDownloadOptions = Omit<DownloadOptions, 'sha256'> & { sha256: null };

export interface DownloadResult {
  path: string;
  size: number;
  sha256: string;
  /** True when a completed file with this hash was already there: nothing was fetched. */
  reused: boolean;
  /** Bytes already on disk when this call started (0 for a fresh download). */
  resumedFrom: number;
  /** Body bytes received over the network by this call, over all attempts. */
  fetchedBytes: number;
  /** The URL that served the last byte. */
  url: string;
}
