import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { BackupService } from '../../src/backup/index.js';
import { openStore, type Store } from '../../src/state/index.js';
import { withTempDir } from '../helpers/cli.js';
import { snapshot } from '../helpers/tree.js';

async function setUp(home: string): Promise<{ dockerDir: string; store: Store; service: BackupService }> {
  const dockerDir = path.join(home, 'docker');
  await mkdir(path.join(dockerDir, 'data', 'empty'), { recursive: true });
  await mkdir(path.join(dockerDir, 'app'), { recursive: true });
  await writeFile(path.join(dockerDir, 'app', 'app.jar'), randomBytes(200 * 1024));
  await writeFile(path.join(dockerDir, 'app', 'run.sh'), '#!/bin/sh\n');
  await chmod(path.join(dockerDir, 'app', 'run.sh'), 0o750);
  await writeFile(path.join(dockerDir, 'data', 'db'), 'rows');
  await symlink('../data/db', path.join(dockerDir, 'app', 'db-link'));
  const store = openStore(path.join(home, 'data', 'nuwax.db'));
  const service = new BackupService({ home, dockerDir, backupsDir: path.join(home, 'backups'), store, compression: 1, retention: { count: 2 } });
  return { dockerDir, store, service };
}

describe('backups (issue 4)', () => {
  test('backup then restore round-trips the tree byte for byte; a path absent at backup time is removed', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, store, service } = await setUp(home);
      const before = await snapshot(dockerDir);
      const row = await service.create({ paths: ['app', 'data', 'added-later'], kind: 'manual', version: '1.0.0' });
      assert.equal(row.status, 'complete');
      assert.equal(row.files, 3);
      assert.equal((await stat(row.path!)).mode & 0o777, 0o600);
      assert.equal((await stat(path.join(home, 'backups'))).mode & 0o777, 0o700);
      await writeFile(path.join(dockerDir, 'app', 'app.jar'), 'broken');
      await writeFile(path.join(dockerDir, 'added-later'), 'new file');
      await writeFile(path.join(dockerDir, 'data', 'db'), 'corrupted');
      await service.restore(row.id);
      assert.deepEqual(await snapshot(dockerDir), before);
      store.close();
    }));

  test('restore works when docker/ is gone and needs no compose file', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, store, service } = await setUp(home);
      const before = await snapshot(dockerDir);
      const row = await service.create({ paths: ['app', 'data'], kind: 'manual', version: '1.0.0' });
      const { rm } = await import('node:fs/promises');
      await rm(dockerDir, { recursive: true, force: true });
      await service.restore(row.id);
      assert.deepEqual(await snapshot(dockerDir), before);
      store.close();
    }));

  test('verify catches a flipped byte and a truncated archive', () =>
    withTempDir('backup', async (home) => {
      const { store, service } = await setUp(home);
      const row = await service.create({ paths: ['app', 'data'], kind: 'manual', version: null });
      assert.equal((await service.verify(row.id)).ok, true);
      const handle = await open(row.path!, 'r+');
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, 100);
      await handle.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, 100);
      await handle.close();
      await assert.rejects(service.verify(row.id), { code: 'E_BACKUP' });
      const second = await service.create({ paths: ['app'], kind: 'manual', version: null });
      await truncate(second.path!, Math.floor(second.size! / 2));
      await assert.rejects(service.verify(second.id), { code: 'E_BACKUP' });
      await assert.rejects(service.restore(second.id), /E_BACKUP|corrupted|sha256/);
      store.close();
    }));

  test('a failing backup.sh is a clear E_BACKUP, leaves no archive and a failed record', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, store, service } = await setUp(home);
      await writeFile(path.join(dockerDir, 'backup.sh'), '#!/bin/sh\necho \'{"success": false, "error": "pg_dump: connection refused"}\'\nexit 1\n');
      await assert.rejects(service.create({ paths: ['app'], kind: 'pre-upgrade', version: '1.0.0' }), (error: { code: string; message: string }) => error.code === 'E_BACKUP' && /pg_dump: connection refused/.test(error.message));
      const [row] = store.backups.list();
      assert.equal(row?.status, 'failed');
      assert.match(row?.error ?? '', /pg_dump/);
      assert.deepEqual((await readdir(path.join(home, 'backups'))).filter((name) => !name.startsWith('.')), []);
      store.close();
    }));

  test('a successful backup.sh is recorded with the file it reports', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, store, service } = await setUp(home);
      await writeFile(path.join(dockerDir, 'backup.sh'), '#!/bin/sh\necho \'{"file": "dump-1.sql"}\'\n');
      await writeFile(path.join(dockerDir, 'restore.sh'), '#!/bin/sh\necho "$1" > restored-with.txt\necho \'{"success": true}\'\n');
      const row = await service.create({ paths: ['app'], kind: 'pre-upgrade', version: '1.0.0' });
      assert.equal(row.hookFile, 'dump-1.sql');
      await service.restore(row.id);
      assert.equal((await readFile(path.join(dockerDir, 'restored-with.txt'), 'utf8')).trim(), '--file=dump-1.sql');
      store.close();
    }));

  test('prune keeps the newest complete backup, the kept ids, and deletes beyond the count', () =>
    withTempDir('backup', async (home) => {
      const { store, service } = await setUp(home);
      const ids: number[] = [];
      for (let index = 0; index < 5; index += 1) ids.push((await service.create({ paths: ['data'], kind: 'manual', version: null })).id);
      const deleted = await service.prune({ keepIds: [ids[0]!] });
      assert.deepEqual(deleted.map((row) => row.id).sort(), [ids[2]!, ids[1]!].sort());
      const left = service.list().map((row) => row.id).sort();
      assert.deepEqual(left, [ids[0]!, ids[3]!, ids[4]!].sort());
      for (const row of deleted) await assert.rejects(stat(row.path!));
      store.close();
    }));

  test('a kill -9 during create leaves a temp file that the next create removes', () =>
    withTempDir('backup', async (home) => {
      const { store, service } = await setUp(home);
      await mkdir(path.join(home, 'backups'), { recursive: true });
      const stale = path.join(home, 'backups', '.backup-9-x.tar.gz.999999.deadbeef.tmp');
      await writeFile(stale, 'half an archive');
      await service.create({ paths: ['data'], kind: 'manual', version: null });
      assert.ok(!(await readdir(path.join(home, 'backups'))).includes(path.basename(stale)));
      store.close();
    }));
});
