import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { download } from '../../src/downloader/index.js';
import { openStore } from '../../src/state/index.js';
import { assertCompleteFile, content, scenario, sha256, waitFor } from './fixture.js';

const child = fileURLToPath(new URL('./download-child.js', import.meta.url));

function runChild(
  command: string,
  args: string[],
): { exited: Promise<{ code: number | null; output: string }>; kill(): void } {
  const process_ = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  process_.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; output: string }>((resolve) =>
    process_.once('exit', (code) => resolve({ code, output })),
  );
  return { exited, kill: () => process_.kill('SIGKILL') };
}

describe('downloader (SPEC 7): across processes', () => {
  test('kill -9 mid-download: a new process resumes from the partial file and fetches only the rest', () =>
    scenario([], async ({ server, options, home, partPath }) => {
      server.throttle = 2 * 1024 * 1024;
      const database = path.join(home, 'nuwax.db');
      const running = runChild(process.execPath, [
        child,
        server.url,
        sha256,
        String(content.length),
        options.directory,
        database,
      ]);
      await waitFor(async () => existsSync(partPath) && (await stat(partPath)).size >= 1024 * 1024);
      running.kill();
      const { code } = await running.exited;
      assert.equal(code, null, 'the child died by the signal');
      const onDisk = (await stat(partPath)).size;
      assert.ok(onDisk > 0 && onDisk < content.length, `partial ${onDisk}`);
      const store = openStore(database);
      try {
        const row = store.downloads.findByHash(sha256)!;
        assert.deepEqual(
          { status: row.status, etag: row.etag, url: row.url },
          { status: 'partial', etag: '"v1"', url: server.url },
          'the row written by the killed process says how to resume',
        );
        server.throttle = 0;
        const before = server.bytesSent;
        const result = await download({ ...options, store });
        await assertCompleteFile(result.path);
        assert.equal(result.resumedFrom, onDisk);
        assert.equal(
          server.bytesSent - before,
          content.length - onDisk,
          'the new process fetched only what was not on disk',
        );
        assert.equal(server.requests.at(-1)!.range, `bytes=${onDisk}-`);
      } finally {
        store.close();
      }
    }));

  test('a download loads neither pino nor the whole of undici: their ~15 MiB would count in its peak RSS', () =>
    scenario([], async ({ server, options, home }) => {
      const running = runChild(process.execPath, [
        child,
        server.url,
        sha256,
        String(content.length),
        options.directory,
        path.join(home, 'nuwax.db'),
      ]);
      const { code, output } = await running.exited;
      assert.equal(code, 0, output);
      const report = JSON.parse(output.trim().split('\n').at(-1)!) as {
        result: { path: string };
        modules: string[];
      };
      await assertCompleteFile(report.result.path);
      const loaded = (name: string) => report.modules.some((file) => file.includes(`${path.sep}${name}`));
      assert.ok(loaded(path.join('undici', 'lib', 'global.js')), 'the list holds the CommonJS modules loaded');
      assert.equal(loaded(path.join('undici', 'index.js')), false, "undici's index (fetch, WebSocket, caches)");
      assert.equal(loaded(`pino${path.sep}`), false, 'pino');
    }));

  for (const engine of ['inline', 'follow'] as const) {
    test(
      `a full disk during the write (EFBIG under a file-size limit) is E_DISK_FULL and keeps the partial file for a resume (${engine} hashing)`,
      {
        skip:
          process.platform !== 'linux' || !existsSync('/usr/bin/prlimit')
            ? 'needs Linux prlimit to cap the file size'
            : false,
      },
      () =>
        scenario([], async ({ server, options, home, partPath }) => {
          const database = path.join(home, 'nuwax.db');
          // The limit stands in for a full disk (both end a write() with an errno the same code maps): 1.5 MiB.
          const running = runChild('/usr/bin/prlimit', [
            `--fsize=${1536 * 1024}`,
            '--',
            process.execPath,
            child,
            server.url,
            sha256,
            String(content.length),
            options.directory,
            database,
            engine,
          ]);
          const { code, output } = await running.exited;
          assert.equal(code, 1);
          assert.equal(JSON.parse(output).code, 'E_DISK_FULL');
          const onDisk = (await stat(partPath)).size;
          assert.ok(onDisk > 0 && onDisk <= 1536 * 1024, `partial ${onDisk}`);
          const store = openStore(database);
          try {
            assert.equal(store.downloads.findByHash(sha256)?.status, 'partial');
            const before = server.bytesSent;
            const result = await download({ ...options, store });
            await assertCompleteFile(result.path);
            assert.equal(result.resumedFrom, onDisk);
            assert.equal(server.bytesSent - before, content.length - onDisk);
          } finally {
            store.close();
          }
        }),
    );

    test(
      `a write that fails between attempts (EFBIG flushing what a cut connection left) is E_DISK_FULL at once, with no retry left hanging (${engine} hashing)`,
      {
        skip:
          process.platform !== 'linux' || !existsSync('/usr/bin/prlimit')
            ? 'needs Linux prlimit to cap the file size'
            : false,
      },
      () =>
        scenario(['cut-half'], async ({ server, home, partPath, options }) => {
          const database = path.join(home, 'nuwax.db');
          // The server cuts at 1.5 MiB; 1 MiB is written during the attempt, the rest by the flush after
          // it, past the 1.25 MiB limit, while no attempt listens to the sink. The retry that followed
          // used to pause its socket for good (a full sink), unseen by the stall watchdog.
          const limit = 1280 * 1024;
          const running = runChild('/usr/bin/prlimit', [
            `--fsize=${limit}`,
            '--',
            process.execPath,
            child,
            server.url,
            sha256,
            String(content.length),
            options.directory,
            database,
            engine,
            '3',
          ]);
          const hung = setTimeout(() => running.kill(), 15_000);
          const { code, output } = await running.exited;
          clearTimeout(hung);
          assert.equal(code, 1, 'the child ended on its own, not killed after hanging');
          assert.equal(JSON.parse(output).code, 'E_DISK_FULL');
          assert.equal(server.requests.length, 1, 'no retry after the disk failed');
          assert.equal((await stat(partPath)).size, limit);
          const store = openStore(database);
          try {
            assert.equal(store.downloads.findByHash(sha256)?.status, 'partial');
            const result = await download({ ...options, store });
            await assertCompleteFile(result.path);
            assert.equal(result.resumedFrom, limit);
            assert.equal(server.requests.at(-1)!.range, `bytes=${limit}-`);
          } finally {
            store.close();
          }
        }),
    );
  }
});
