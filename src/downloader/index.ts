/**
 * Resumable, verified downloads (SPEC 7). One file at a time through undici; Range resume checked
 * with If-Range; SHA-256 in the same pass as the write; retries with backoff and jitter, a stall
 * timeout, mirrors in turn, an optional rate limit; the file is complete only once its size and
 * hash match, then fsynced and renamed, and found again by hash so it is never fetched twice.
 */
import { DownloadJob } from './download.js';
import { findCompletedDownload, normaliseSha256, sizeOf } from './files.js';
import type { DownloadOptions, DownloadResult, UnverifiedDownloadOptions } from './types.js';

export { findCompletedDownload, finalPathFor, partialPathFor } from './files.js';
export type { DownloadOptions, DownloadResult, UnverifiedDownloadOptions } from './types.js';

export async function download(options: DownloadOptions | UnverifiedDownloadOptions): Promise<DownloadResult> {
  if (options.sha256 === null) return new DownloadJob(options).run();
  const sha256 = normaliseSha256(options.sha256);
  const completed = await findCompletedDownload(options.store, sha256);
  if (completed) {
    const row = options.store.downloads.findByHash(sha256)!;
    return {
      path: completed,
      size: (await sizeOf(completed)) ?? 0,
      sha256,
      reused: true,
      resumedFrom: 0,
      fetchedBytes: 0,
      url: row.url,
    };
  }
  return new DownloadJob(options).run();
}
