import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type DownloadOptions, download } from '../../src/downloader/index.js';
import { openStore, type Store } from '../../src/state/index.js';
import { withTempDir } from '../helpers/cli.js';
import { type Behaviour, MisbehavingServer } from '../helpers/misbehaving-server.js';

/** 3 MiB and a bit: several sink slots, small enough for a busy 2-core machine. */
export const content = randomBytes(3 * 1024 * 1024 + 123);
export const sha256 = createHash('sha256').update(content).digest('hex');

export interface Scenario {
  server: MisbehavingServer;
  options: DownloadOptions;
  store: Store;
  home: string;
  directory: string;
  partPath: string;
}

/**
 * A misbehaving server, a temp home with a real SQLite store, and download options with small
 * timings. The server serves `body` (the shared 3 MiB `content` unless a test needs another size).
 */
export async function scenario(
  queue: Behaviour[],
  run: (context: Scenario) => Promise<void>,
  extra: Partial<DownloadOptions> = {},
  body: Buffer = content,
): Promise<void> {
  const server = await new MisbehavingServer(body).start();
  server.queue = [...queue];
  const hash = body === content ? sha256 : sha256Of(body);
  try {
    await withTempDir('dl', async (home) => {
      const store = openStore(path.join(home, 'nuwax.db'));
      const directory = path.join(home, 'downloads');
      try {
        const options: DownloadOptions = {
          urls: [server.url],
          sha256: hash,
          size: body.length,
          directory,
          store,
          retries: 3,
          stallTimeoutMs: 400,
          backoff: { baseMs: 5, maxMs: 40 },
          ...extra,
        };
        await run({ server, options, store, home, directory, partPath: path.join(directory, `${hash}.part`) });
      } finally {
        store.close();
      }
    });
  } finally {
    await server.stop();
  }
}

export function sha256Of(...parts: Buffer[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

/** What a process that stopped half way leaves behind: `prefix` in the partial file, and the row that says how it was fetched. */
export async function leavePartial({ server, options, store, partPath }: Scenario, prefix: Buffer): Promise<void> {
  await mkdir(options.directory, { recursive: true });
  await writeFile(partPath, prefix);
  store.downloads.save({
    url: server.url,
    path: path.join(options.directory, 'file.tar.gz'),
    size: options.size ?? null,
    hash: options.sha256,
    offset: prefix.length,
    etag: server.etag,
    lastModified: null,
    hashState: null,
    status: 'partial',
    error: null,
  });
}

export async function assertCompleteFile(file: string, body: Buffer = content): Promise<void> {
  const bytes = await readFile(file);
  assert.equal(bytes.length, body.length, 'the file has exactly the expected size');
  assert.ok(bytes.equals(body), 'the file has exactly the expected bytes');
}

export async function filesIn(directory: string): Promise<string[]> {
  return (await readdir(directory).catch(() => [] as string[])).sort();
}

export function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const check = async () => {
      if (await condition()) return resolve();
      if (Date.now() - started > timeoutMs) return reject(new Error('timed out waiting for a condition'));
      setTimeout(check, 20);
    };
    void check();
  });
}

/**
 * Aborts a throttled download once more than `abortAfter` bytes are done: E_ABORTED, a partial
 * file longer than `kept` and a row that says so. Then a new call completes it, fetching only the rest.
 */
export async function abortThenResume(
  { server, options, store, partPath }: Scenario,
  abortAfter: number,
  kept = 0,
): Promise<void> {
  server.throttle = 1024 * 1024;
  const controller = new AbortController();
  const aborted = download({
    ...options,
    signal: controller.signal,
    onProgress: (event) => event.done > abortAfter && controller.abort(),
  });
  await assert.rejects(aborted, { code: 'E_ABORTED' });
  const partial = (await stat(partPath)).size;
  assert.ok(partial > kept && partial < content.length, `partial ${partial}`);
  const row = store.downloads.findByHash(sha256);
  assert.deepEqual({ status: row?.status, offset: row?.offset }, { status: 'partial', offset: partial });
  server.throttle = 0;
  const before = server.bytesSent;
  const result = await download(options);
  await assertCompleteFile(result.path);
  assert.equal(result.resumedFrom, partial);
  assert.equal(server.bytesSent - before, content.length - partial, 'only the rest was fetched');
}
