// A separate process for the kill -9 and disk-full tests: one download() from the compiled tree;
// prints the result or the error as one JSON line (with the CommonJS modules loaded, for the
// test that keeps the download's imports small).
import { createRequire } from 'node:module';
import { downloadFile } from '../../src/downloader/download.js';
import { openStore } from '../../src/state/index.js';

const [url, sha256, size, directory, database, engine, retries] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string | undefined,
  string | undefined,
];
const store = openStore(database);
try {
  const result = await downloadFile(
    {
      urls: [url],
      sha256,
      size: Number(size),
      directory,
      store,
      retries: Number(retries ?? 0),
      backoff: { baseMs: 5, maxMs: 10 },
    },
    engine === 'inline' || engine === 'follow' ? engine : undefined,
  );
  const modules = Object.keys(createRequire(import.meta.url).cache);
  process.stdout.write(`${JSON.stringify({ ok: true, result, modules })}\n`);
} catch (error) {
  const { code, message } = error as { code?: string; message: string };
  process.stdout.write(`${JSON.stringify({ ok: false, code, message })}\n`);
  process.exitCode = 1;
} finally {
  store.close();
}
