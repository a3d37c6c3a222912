import { randomBytes } from 'node:crypto';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BackupService } from '../../src/backup/index.js';
import { openStore, type Store } from '../../src/state/index.js';

export interface Box {
  dockerDir: string;
  store: Store;
  service: BackupService;
}

/** A small deployment: app files, data with an empty folder, a symlink and modes. */
export async function setUpBox(
  home: string,
  retention: { count?: number; days?: number } = { count: 2 },
): Promise<Box> {
  const dockerDir = path.join(home, 'docker');
  await mkdir(path.join(dockerDir, 'data', 'empty'), { recursive: true });
  await mkdir(path.join(dockerDir, 'app', 'conf'), { recursive: true });
  await writeFile(path.join(dockerDir, 'app', 'app.jar'), randomBytes(200 * 1024));
  await writeFile(path.join(dockerDir, 'app', 'run.sh'), '#!/bin/sh\n');
  await chmod(path.join(dockerDir, 'app', 'run.sh'), 0o750);
  await writeFile(path.join(dockerDir, 'app', 'conf', 'app.yml'), 'port: 80\n');
  await writeFile(path.join(dockerDir, 'data', 'db'), 'rows');
  await chmod(path.join(dockerDir, 'data'), 0o700);
  await symlink('../data/db', path.join(dockerDir, 'app', 'db-link'));
  const store = openStore(path.join(home, 'data', 'nuwax.db'));
  const service = new BackupService({
    home,
    dockerDir,
    backupsDir: path.join(home, 'backups'),
    store,
    compression: 1,
    retention,
  });
  return { dockerDir, store, service };
}
