import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { BackupService } from '../../src/backup/index.js';
import { withTempDir } from '../helpers/cli.js';
import { snapshot } from '../helpers/tree.js';
import { HOSTILE_CASES, hostileTar } from '../archive/hostile-cases.js';
import { setUpBox } from './box.js';

/**
 * A child process that runs one backup operation on HOME. With `pause`, it stops dead inside its
 * first progress event (Atomics.wait), mid-write, so that the parent can kill -9 it there.
 */
const CHILD = `
import path from 'node:path';
const [backupUrl, stateUrl, home, mode, id] = process.argv.slice(2);
const { BackupService } = await import(backupUrl);
const { openStore } = await import(stateUrl);
const store = openStore(path.join(home, 'data', 'nuwax.db'));
const service = new BackupService({ home, dockerDir: path.join(home, 'docker'), backupsDir: path.join(home, 'backups'), store, compression: 1 });
let paused = false;
const onProgress = mode.startsWith('pause') ? () => {
  if (paused) return;
  paused = true;
  process.stdout.write('paused\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
} : undefined;
try {
  if (mode.endsWith('restore')) await service.restore(Number(id), { onProgress });
  else await service.create({ paths: ['data'], kind: 'manual', version: null, onProgress });
  console.log(JSON.stringify({ ok: true }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, code: error.code, message: error.message }));
} finally {
  store.close();
}
`;

function childArgs(work: string, home: string, mode: string, id?: number): string[] {
  return [
    path.join(work, 'child.mjs'),
    new URL('../../src/backup/index.js', import.meta.url).href,
    new URL('../../src/state/index.js', import.meta.url).href,
    home,
    mode,
    ...(id === undefined ? [] : [String(id)]),
  ];
}

function output(child: ChildProcess): {
  text: () => string;
  waitFor: (needle: string) => Promise<void>;
  exit: Promise<number | null>;
} {
  let text = '';
  const waiters: Array<[string, () => void]> = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    for (const [needle, resolve] of waiters) if (text.includes(needle)) resolve();
  });
  const exit = new Promise<number | null>((resolve) => child.on('close', resolve));
  return {
    text: () => text,
    exit,
    waitFor: (needle) =>
      new Promise((resolve) => (text.includes(needle) ? resolve() : waiters.push([needle, resolve]))),
  };
}

async function bigData(dockerDir: string): Promise<void> {
  await mkdir(path.join(dockerDir, 'data', 'blobs'), { recursive: true });
  for (let index = 0; index < 8; index += 1)
    await writeFile(path.join(dockerDir, 'data', 'blobs', `b${index}`), randomBytes(256 * 1024));
}

describe('backups under failure', () => {
  test('disk full during create (EFBIG under ulimit -f) leaves no partial archive and a failed E_DISK_FULL record', () =>
    withTempDir('backup-fail', async (work) => {
      const home = path.join(work, 'home');
      const { dockerDir, store } = await setUpBox(home);
      await bigData(dockerDir);
      await writeFile(path.join(work, 'child.mjs'), CHILD);
      // SIGXFSZ ignored, so that the write fails with EFBIG instead of killing the process.
      const script = `trap '' XFSZ; ulimit -f 1024; exec "$0" "$@"`;
      const child = spawn('bash', ['-c', script, process.execPath, ...childArgs(work, home, 'create')], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const { text, exit } = output(child);
      assert.equal(await exit, 0);
      const result = JSON.parse(text().trim()) as { ok: boolean; code: string };
      assert.deepEqual({ ok: result.ok, code: result.code }, { ok: false, code: 'E_DISK_FULL' });
      assert.deepEqual(await readdir(path.join(home, 'backups')), []);
      const [row] = store.backups.list();
      assert.equal(row?.status, 'failed');
      assert.match(row?.error ?? '', /^E_DISK_FULL/);
      store.close();
    }));

  test('kill -9 during create: the next create removes the stale temporary file, marks the record failed and works', () =>
    withTempDir('backup-fail', async (work) => {
      const home = path.join(work, 'home');
      const { dockerDir, store, service } = await setUpBox(home);
      await bigData(dockerDir);
      await writeFile(path.join(work, 'child.mjs'), CHILD);
      const child = spawn(process.execPath, childArgs(work, home, 'pause-create'), {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const { waitFor, exit } = output(child);
      await waitFor('paused');
      const temporaries = (await readdir(path.join(home, 'backups'))).filter((name) => name.endsWith('.tmp'));
      assert.equal(temporaries.length, 1);
      child.kill('SIGKILL');
      await exit;
      const [killed] = store.backups.list();
      assert.equal(killed?.status, 'running');
      const row = await service.create({ paths: ['data'], kind: 'manual', version: null });
      assert.deepEqual(await readdir(path.join(home, 'backups')), [path.basename(row.path!)]);
      assert.equal(store.backups.get(killed!.id)?.status, 'failed');
      assert.match(store.backups.get(killed!.id)?.error ?? '', /interrupted/);
      assert.equal((await service.verify(row.id)).ok, true);
      store.close();
    }));

  test('kill -9 during restore: docker/ is untouched, and the next restore cleans up and restores exactly', () =>
    withTempDir('backup-fail', async (work) => {
      const home = path.join(work, 'home');
      const { dockerDir, store, service } = await setUpBox(home);
      await bigData(dockerDir);
      const before = await snapshot(dockerDir);
      const row = await service.create({ paths: ['data'], kind: 'manual', version: null });
      await writeFile(path.join(dockerDir, 'data', 'db'), 'changed after the backup');
      const changed = await snapshot(dockerDir);
      await writeFile(path.join(work, 'child.mjs'), CHILD);
      const child = spawn(process.execPath, childArgs(work, home, 'pause-restore', row.id), {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const { waitFor, exit } = output(child);
      await waitFor('paused');
      child.kill('SIGKILL');
      await exit;
      assert.deepEqual(await snapshot(dockerDir), changed);
      assert.ok((await readdir(home)).some((name) => name.startsWith('.nuwax-restore-')));
      await service.restore(row.id);
      assert.deepEqual(await snapshot(dockerDir), before);
      // The replaced tree is synced, then deleted, after the restore returned.
      await service.settled();
      assert.deepEqual((await readdir(home)).sort(), ['backups', 'data', 'docker']);
      store.close();
    }));
});

describe('restore of a hostile archive writes nothing outside staging and names the entry', () => {
  for (const [name, entries, mentioned] of HOSTILE_CASES) {
    test(name, () =>
      withTempDir('backup-hostile', async (work) => {
        const home = path.join(work, 'home');
        const { dockerDir, store, service } = await setUpBox(home);
        const file = path.join(home, 'backups', 'evil.tar.gz');
        await mkdir(path.dirname(file), { recursive: true });
        await hostileTar(file, [
          { name: '.nuwax-backup.json', content: JSON.stringify({ paths: ['app'] }) },
          ...entries,
        ]);
        const id = store.backups.begin({ version: null, kind: 'manual', paths: ['app'] });
        const sha256 = createHash('sha256')
          .update(await readFile(file))
          .digest('hex');
        store.backups.complete(id, { path: file, size: 0, sha256, files: 1 });
        await writeFile(path.join(work, 'outside.txt'), 'precious');
        const before = await snapshot(dockerDir);
        await assert.rejects(service.restore(id), (error: { code: string; message: string }) => {
          assert.ok(['E_UNSAFE_PATH', 'E_BACKUP'].includes(error.code), error.message);
          assert.ok(error.message.includes(mentioned), `${error.message} should name ${mentioned}`);
          return true;
        });
        assert.deepEqual(await snapshot(dockerDir), before);
        assert.deepEqual((await readdir(work)).sort(), ['home', 'outside.txt']);
        assert.deepEqual((await readdir(home)).sort(), ['backups', 'data', 'docker']);
        assert.equal(await readFile(path.join(work, 'outside.txt'), 'utf8'), 'precious');
        store.close();
      }),
    );
  }
});

describe('backup.sh and restore.sh hooks (SPEC 8)', () => {
  test('a failing backup.sh is a clear E_BACKUP with its error text, leaves no archive and a failed record', () =>
    withTempDir('backup-hook', async (home) => {
      const { dockerDir, store, service } = await setUpBox(home);
      await writeFile(
        path.join(dockerDir, 'backup.sh'),
        '#!/bin/sh\necho \'{"success": false, "error": "pg_dump: connection refused"}\'\nexit 1\n',
      );
      await assert.rejects(
        service.create({ paths: ['app'], kind: 'pre-upgrade', version: '1.0.0' }),
        (error: { code: string; message: string }) =>
          error.code === 'E_BACKUP' && /pg_dump: connection refused/.test(error.message),
      );
      const [row] = store.backups.list();
      assert.equal(row?.status, 'failed');
      assert.match(row?.error ?? '', /pg_dump/);
      assert.deepEqual(await readdir(path.join(home, 'backups')), []);
      store.close();
    }));

  test('backup.sh runs first in docker/ with --format=json; its file is recorded and handed to restore.sh', () =>
    withTempDir('backup-hook', async (home) => {
      const { dockerDir, store, service } = await setUpBox(home);
      // Executable with a bash shebang: run as ./backup.sh, not through sh.
      await writeFile(
        path.join(dockerDir, 'backup.sh'),
        '#!/bin/bash\necho "$PWD $*" > data/hook-args.txt\necho progress line\necho \'{"file": "dumps/db-1.sql"}\'\n',
      );
      await chmod(path.join(dockerDir, 'backup.sh'), 0o755);
      await writeFile(
        path.join(dockerDir, 'restore.sh'),
        '#!/bin/sh\necho "$*" > restored-with.txt\necho \'{"success": true}\'\n',
      );
      const row = await service.create({ paths: ['data'], kind: 'pre-upgrade', version: '1.0.0' });
      assert.equal(row.hookFile, 'dumps/db-1.sql');
      assert.equal(
        (await readFile(path.join(dockerDir, 'data', 'hook-args.txt'), 'utf8')).trim(),
        `${dockerDir} --format=json`,
      );
      await service.restore(row.id);
      assert.equal(
        (await readFile(path.join(dockerDir, 'restored-with.txt'), 'utf8')).trim(),
        '--file=dumps/db-1.sql --format=json',
      );
      store.close();
    }));

  test('a failing restore.sh is E_RESTORE with its error text', () =>
    withTempDir('backup-hook', async (home) => {
      const { dockerDir, store, service } = await setUpBox(home);
      await writeFile(path.join(dockerDir, 'backup.sh'), '#!/bin/sh\necho \'{"file": "x.sql"}\'\n');
      await writeFile(
        path.join(dockerDir, 'restore.sh'),
        '#!/bin/sh\necho \'{"success": false, "error": "x.sql: no such dump"}\'\nexit 3\n',
      );
      const row = await service.create({ paths: ['data'], kind: 'manual', version: null });
      await assert.rejects(
        service.restore(row.id),
        (error: { code: string; message: string }) => error.code === 'E_RESTORE' && /no such dump/.test(error.message),
      );
      await assert.doesNotReject(service.restore(row.id, { runHook: false }));
      store.close();
    }));

  test('runHook: false skips backup.sh', () =>
    withTempDir('backup-hook', async (home) => {
      const { dockerDir, store } = await setUpBox(home);
      await writeFile(path.join(dockerDir, 'backup.sh'), '#!/bin/sh\nexit 1\n');
      const service = new BackupService({ home, dockerDir, backupsDir: path.join(home, 'backups'), store });
      const row = await service.create({ paths: ['data'], kind: 'manual', version: null, runHook: false });
      assert.equal(row.status, 'complete');
      assert.equal(row.hookFile, null);
      store.close();
    }));
});
