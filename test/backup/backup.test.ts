import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { BackupService } from '../../src/backup/index.js';
import type { ProgressEvent } from '../../src/events/index.js';
import { openStore } from '../../src/state/index.js';
import { withTempDir } from '../helpers/cli.js';
import { setUpBox } from './box.js';
import { snapshot } from '../helpers/tree.js';

async function flipByte(file: string, position: number): Promise<void> {
  const handle = await open(file, 'r+');
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, position);
  await handle.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, position);
  await handle.close();
}

describe('backups: create, verify, restore (SPEC 8, 12)', () => {
  test('backup then restore round-trips the tree byte for byte; a path absent at backup time is removed', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, store, service } = await setUpBox(home);
      const before = await snapshot(dockerDir);
      const events: ProgressEvent[] = [];
      const row = await service.create({
        paths: ['app', 'data', 'added-later', 'app/conf'],
        kind: 'manual',
        version: '1.0.0',
        onProgress: (event) => events.push(event),
      });
      assert.equal(row.status, 'complete');
      assert.equal(row.files, 4);
      assert.deepEqual(row.paths, ['added-later', 'app', 'data']);
      assert.equal(row.size, (await stat(row.path!)).size);
      assert.match(row.sha256 ?? '', /^[0-9a-f]{64}$/);
      assert.equal((await stat(row.path!)).mode & 0o777, 0o600);
      assert.equal((await stat(path.join(home, 'backups'))).mode & 0o777, 0o700);
      assert.equal(events.at(-1)?.files, 4);
      await writeFile(path.join(dockerDir, 'app', 'app.jar'), 'broken');
      await writeFile(path.join(dockerDir, 'app', 'new-in-app.txt'), 'added by an upgrade');
      await writeFile(path.join(dockerDir, 'added-later'), 'new file');
      await writeFile(path.join(dockerDir, 'data', 'db'), 'corrupted');
      await writeFile(path.join(dockerDir, 'not-covered.txt'), 'stays');
      const restored = await service.restore(row.id);
      assert.deepEqual(restored.paths, ['added-later', 'app', 'data']);
      assert.deepEqual(await snapshot(dockerDir), {
        ...before,
        'not-covered.txt': (await snapshot(dockerDir))['not-covered.txt']!,
      });
      // Nothing left beside docker/: no staging, no set-aside folder (its deletion ends after the restore).
      await service.settled();
      assert.deepEqual((await readdir(home)).sort(), ['backups', 'data', 'docker']);
      store.close();
    }));

  test('a restore whose sync fails keeps the replaced tree (not durable yet); the next restore removes it', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, store, service } = await setUpBox(home);
      const before = await snapshot(dockerDir);
      const row = await service.create({ paths: ['app', 'data'], kind: 'manual', version: '1.0.0' });
      await writeFile(path.join(dockerDir, 'app', 'app.jar'), 'broken');
      // A `sync` that fails, first on PATH: the restored files cannot be made durable.
      const bin = path.join(home, 'bin');
      await mkdir(bin);
      await writeFile(path.join(bin, 'sync'), '#!/bin/sh\necho "sync: I/O error" >&2\nexit 1\n', { mode: 0o755 });
      const pathBefore = process.env.PATH;
      process.env.PATH = `${bin}:${pathBefore}`;
      try {
        await service.restore(row.id);
        await service.settled();
      } finally {
        process.env.PATH = pathBefore;
      }
      assert.deepEqual(await snapshot(dockerDir), before);
      const kept = (await readdir(home)).filter((name) => name.startsWith('.nuwax-restore-old-'));
      assert.equal(kept.length, 1, 'the replaced tree is kept while the restored one is not synced');
      assert.equal(await readFile(path.join(home, kept[0]!, 'app', 'app.jar'), 'utf8'), 'broken');
      await service.restore(row.id);
      await service.settled();
      assert.deepEqual(await snapshot(dockerDir), before);
      assert.deepEqual((await readdir(home)).sort(), ['backups', 'bin', 'data', 'docker']);
      store.close();
    }));

  test('the archive holds a metadata entry and GNU tar reads it', () =>
    withTempDir('backup', async (home) => {
      const { store, service } = await setUpBox(home);
      const row = await service.create({
        paths: ['app', 'gone'],
        kind: 'pre-upgrade',
        version: '1.2.3',
        upgradeId: null,
      });
      const listing = spawnSync('tar', ['-tzf', row.path!], { encoding: 'utf8' });
      assert.equal(listing.status, 0, listing.stderr);
      assert.equal(listing.stdout.split('\n')[0], '.nuwax-backup.json');
      const metadata = JSON.parse(
        spawnSync('tar', ['-xzOf', row.path!, '.nuwax-backup.json'], { encoding: 'utf8' }).stdout,
      ) as Record<string, unknown>;
      assert.deepEqual(
        { version: metadata.version, paths: metadata.paths, absent: metadata.absent },
        { version: '1.2.3', paths: ['app', 'gone'], absent: ['gone'] },
      );
      store.close();
    }));

  test('restore works when docker/ is gone and needs no compose file', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, store, service } = await setUpBox(home);
      const before = await snapshot(dockerDir);
      const row = await service.create({ paths: ['app', 'data'], kind: 'manual', version: '1.0.0' });
      await rm(dockerDir, { recursive: true, force: true });
      await service.restore(row.id);
      assert.deepEqual(await snapshot(dockerDir), before);
      store.close();
    }));

  test('restore works from the archive alone when the database is lost', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, store, service } = await setUpBox(home);
      const before = await snapshot(dockerDir);
      const row = await service.create({ paths: ['app', 'data', 'later'], kind: 'manual', version: '1.0.0' });
      store.close();
      await rm(path.join(home, 'data'), { recursive: true });
      await writeFile(path.join(dockerDir, 'later'), 'x');
      await rm(path.join(dockerDir, 'app'), { recursive: true });
      const fresh = openStore(path.join(home, 'data', 'nuwax.db'));
      const again = new BackupService({ home, dockerDir, backupsDir: path.join(home, 'backups'), store: fresh });
      assert.deepEqual((await again.restoreFile(row.path!)).paths, ['app', 'data', 'later']);
      assert.deepEqual(await snapshot(dockerDir), before);
      fresh.close();
    }));

  test('a recorded backup that compresses far past 20x (a database of zeros) restores: no ratio bound on our own backup', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, service } = await setUpBox(home);
      // 48 MiB of zeros gzip to ~50 KiB: ~1000x, past the 20x bound an extraction of a package keeps.
      await writeFile(path.join(dockerDir, 'data', 'ibdata1'), Buffer.alloc(48 * 1024 * 1024));
      const before = await snapshot(dockerDir);
      const row = await service.create({ paths: ['data'], kind: 'manual', version: '1.0.0' });
      assert.ok(row.size! * 20 < 48 * 1024 * 1024, `archive of ${row.size} bytes`);
      await writeFile(path.join(dockerDir, 'data', 'ibdata1'), 'corrupted');
      assert.deepEqual((await service.restore(row.id)).paths, ['data']);
      assert.deepEqual(await snapshot(dockerDir), before);
    }));

  test('the replaced tree is deleted after the restore returns: nothing of the restore is left once settled', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, service } = await setUpBox(home);
      const before = await snapshot(dockerDir);
      const row = await service.create({ paths: ['app', 'data'], kind: 'manual', version: '1.0.0' });
      await writeFile(path.join(dockerDir, 'data', 'db'), 'corrupted');
      await service.restore(row.id);
      assert.deepEqual(await snapshot(dockerDir), before);
      await service.settled();
      assert.deepEqual(
        (await readdir(home)).filter((name) => name.startsWith('.nuwax-restore')),
        [],
        'no staging nor old tree left',
      );
    }));

  test('a restore over a live tree of 2,000 files in 60 folders gives back the backup byte for byte, modes kept', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, service } = await setUpBox(home);
      for (let index = 0; index < 2000; index += 1) {
        const folder = path.join(dockerDir, 'data', `d${index % 60}`);
        await mkdir(folder, { recursive: true });
        const size = (index * 7919) % (70 * 1024);
        await writeFile(path.join(folder, `f${index}`), randomBytes(size), { mode: index % 3 ? 0o644 : 0o600 });
      }
      // One large file between the small ones: streamed in pieces, not held whole.
      await writeFile(path.join(dockerDir, 'data', 'large.bin'), randomBytes(3 * 1024 * 1024 + 17));
      const before = await snapshot(dockerDir);
      const row = await service.create({ paths: ['app', 'data'], kind: 'manual', version: '1.0.0' });
      // The live tree has moved on: files changed, added and removed.
      await writeFile(path.join(dockerDir, 'data', 'd1', 'f1'), 'changed');
      await writeFile(path.join(dockerDir, 'data', 'd2', 'new'), 'added');
      await rm(path.join(dockerDir, 'data', 'd3'), { recursive: true });
      assert.equal((await service.restore(row.id)).files, 2000 + 1 + 4 + 1, 'and the metadata entry');
      assert.deepEqual(await snapshot(dockerDir), before);
      await service.settled();
      assert.deepEqual((await readdir(home)).sort(), ['backups', 'data', 'docker']);
    }));

  test('verify catches a flipped byte, a truncated archive and a missing one; restore then changes nothing', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, store, service } = await setUpBox(home);
      const row = await service.create({ paths: ['app', 'data'], kind: 'manual', version: null });
      assert.deepEqual(await service.verify(row.id), { ok: true, entries: 10, sha256: row.sha256 });
      await flipByte(row.path!, Math.floor(row.size! / 2));
      await assert.rejects(
        service.verify(row.id),
        (error: { code: string; message: string }) => error.code === 'E_BACKUP' && error.message.includes(`#${row.id}`),
      );
      await writeFile(path.join(dockerDir, 'app', 'run.sh'), 'current');
      const current = await snapshot(dockerDir);
      await assert.rejects(
        service.restore(row.id),
        (error: { code: string; message: string }) =>
          error.code === 'E_BACKUP' && /corrupted|unreadable/.test(error.message),
      );
      assert.deepEqual(await snapshot(dockerDir), current);
      const second = await service.create({ paths: ['app'], kind: 'manual', version: null });
      await truncate(second.path!, Math.floor(second.size! / 2));
      await assert.rejects(service.verify(second.id), { code: 'E_BACKUP' });
      await assert.rejects(service.restore(second.id), { code: 'E_BACKUP' });
      assert.deepEqual(await snapshot(dockerDir), current);
      await rm(second.path!);
      await assert.rejects(
        service.verify(second.id),
        (error: { code: string; message: string }) => error.code === 'E_BACKUP' && error.message.includes('missing'),
      );
      await assert.rejects(service.verify(999), { code: 'E_BACKUP_NOT_FOUND' });
      assert.deepEqual((await readdir(home)).sort(), ['backups', 'data', 'docker']);
      store.close();
    }));

  test('a restore that fails midway puts back what it had swapped: current files stay as they were', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, store, service } = await setUpBox(home);
      const row = await service.create({ paths: ['app', 'data/db'], kind: 'manual', version: null });
      await writeFile(path.join(dockerDir, 'app', 'run.sh'), 'changed since');
      // data/ is now a file: the second path cannot be swapped in.
      await rm(path.join(dockerDir, 'data'), { recursive: true });
      await writeFile(path.join(dockerDir, 'data'), 'a file where a folder was');
      const current = await snapshot(dockerDir);
      await assert.rejects(service.restore(row.id), { code: 'E_RESTORE' });
      assert.deepEqual(await snapshot(dockerDir), current);
      assert.deepEqual((await readdir(home)).sort(), ['backups', 'data', 'docker']);
      store.close();
    }));

  test('a backup larger than the free space is refused before writing: E_DISK_FULL with figures, a failed record', () =>
    withTempDir('backup', async (home) => {
      const { dockerDir, store, service } = await setUpBox(home);
      // Sparse: 8 TiB by its size, nothing on disk.
      await writeFile(path.join(dockerDir, 'data', 'huge.img'), '');
      await truncate(path.join(dockerDir, 'data', 'huge.img'), 8 * 1024 ** 4);
      await assert.rejects(
        service.create({ paths: ['data'], kind: 'manual', version: null }),
        (error: { code: string; message: string }) =>
          error.code === 'E_DISK_FULL' && /TiB needed/.test(error.message) && /free/.test(error.message),
      );
      const [row] = store.backups.list();
      assert.equal(row?.status, 'failed');
      assert.match(row?.error ?? '', /^E_DISK_FULL/);
      assert.deepEqual(await readdir(path.join(home, 'backups')), []);
      store.close();
    }));
});

describe('backups: retention', () => {
  test('prune by count keeps the newest complete backup and the kept ids, deletes files and marks rows', () =>
    withTempDir('backup', async (home) => {
      const { store, service } = await setUpBox(home);
      const ids: number[] = [];
      for (let index = 0; index < 5; index += 1)
        ids.push((await service.create({ paths: ['data'], kind: 'manual', version: null })).id);
      const deleted = await service.prune({ keepIds: [ids[0]!] });
      assert.deepEqual(deleted.map((row) => row.id).sort(), [ids[1]!, ids[2]!]);
      assert.deepEqual(
        service
          .list()
          .map((row) => row.id)
          .sort(),
        [ids[0]!, ids[3]!, ids[4]!],
      );
      for (const row of deleted) {
        await assert.rejects(stat(row.path!));
        assert.equal(store.backups.get(row.id)?.status, 'deleted');
      }
      store.close();
    }));

  test('prune by age never deletes the newest complete backup, even when it is old', () =>
    withTempDir('backup', async (home) => {
      const { store, service } = await setUpBox(home, { days: 7 });
      const first = await service.create({ paths: ['data'], kind: 'manual', version: null });
      const second = await service.create({ paths: ['data'], kind: 'manual', version: null });
      assert.deepEqual(await service.prune({ now: new Date() }), []);
      const later = new Date(Date.now() + 30 * 86_400_000);
      assert.deepEqual(
        (await service.prune({ now: later })).map((row) => row.id),
        [first.id],
      );
      assert.deepEqual(
        service.list().map((row) => row.id),
        [second.id],
      );
      store.close();
    }));

  test('prune keeps the backup an unfinished upgrade needs', () =>
    withTempDir('backup', async (home) => {
      const { store, service } = await setUpBox(home, { count: 1 });
      const needed = await service.create({ paths: ['data'], kind: 'pre-upgrade', version: '1.0.0' });
      const upgradeId = store.upgrades.begin({
        fromVersion: '1.0.0',
        toVersion: '1.1.0',
        strategy: 'full',
        trigger: 'manual',
        startedBy: null,
        reason: null,
      });
      store.upgrades.update(upgradeId, { backupId: needed.id });
      await service.create({ paths: ['data'], kind: 'manual', version: null });
      await service.create({ paths: ['data'], kind: 'manual', version: null });
      const deleted = await service.prune();
      assert.ok(!deleted.some((row) => row.id === needed.id));
      assert.equal(store.backups.get(needed.id)?.status, 'complete');
      assert.equal(deleted.length, 1);
      store.close();
    }));
});
