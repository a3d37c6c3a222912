/**
 * Resumable, verified downloads (SPEC 7). One file at a time through undici; Range resume checked
 * with If-Range; SHA-256 in the same pass as the write; retries with backoff and jitter, a stall
 * timeout, mirrors in turn, an optional rate limit; the file is complete only once its size and
 * hash match, then fsynced and renamed, and found again by hash so it is never fetched twice.
 */
import { downloadFile } from './download.js';
import type { DownloadOptions, DownloadResult, UnverifiedDownloadOptions } from './types.js';

export { findCompletedDownload, finalPathFor, partialPathFor } from './files.js';
export type { DownloadOptions, DownloadResult, UnverifiedDownloadOptions } from './types.js';

export function download(options: DownloadOptions | UnverifiedDownloadOptions): Promise<DownloadResult> {
  return downloadFile(options);
}
