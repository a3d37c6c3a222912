import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { DownloadOptions } from '../../src/downloader/index.js';
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

/** A misbehaving server, a temp home with a real SQLite store, and download options with small timings. */
export async function scenario(queue: Behaviour[], run: (context: Scenario) => Promise<void>, extra: Partial<DownloadOptions> = {}): Promise<void> {
  const server = await new MisbehavingServer(content).start();
  server.queue = [...queue];
  try {
    await withTempDir('dl', async (home) => {
      const store = openStore(path.join(home, 'nuwax.db'));
      const directory = path.join(home, 'downloads');
      try {
        const options: DownloadOptions = { urls: [server.url], sha256, size: content.length, directory, store, retries: 3, stallTimeoutMs: 400, backoff: { baseMs: 5, maxMs: 40 }, ...extra };
        await run({ server, options, store, home, directory, partPath: path.join(directory, `${sha256}.part`) });
      } finally {
        store.close();
      }
    });
  } finally {
    await server.stop();
  }
}

export async function assertCompleteFile(file: string): Promise<void> {
  const bytes = await readFile(file);
  assert.equal(bytes.length, content.length, 'the file has exactly the expected size');
  assert.ok(bytes.equals(content), 'the file has exactly the expected bytes');
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
