import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCli, withTempDir } from '../helpers/cli.js';
import { FileServer } from './file-server.js';

/* A release made by `nuwax release pack|manifest`, served on 127.0.0.1, and a box to install it on. */

const ARCH = process.arch === 'arm64' ? 'aarch64' : 'x86_64';

/** A window twelve hours away, so the daemon is outside it whenever the test runs. */
function farWindow(): string {
  const start = (new Date().getHours() + 12) % 24;
  const hour = (value: number) => String(value % 24).padStart(2, '0');
  return `${hour(start)}:00-${hour(start + 1)}:00`;
}

/** Packs `files` as release `version` and serves it; returns the box's home and the package size. */
export async function publish(
  directory: string,
  server: FileServer,
  files: Record<string, string | Buffer>,
  version = '1.1.0',
): Promise<{ box: string; size: number }> {
  const app = path.join(directory, 'release');
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(app, name)), { recursive: true });
    await writeFile(path.join(app, name), content);
  }
  const pack = await runCli(['release', 'pack', app, '--version', version, '-o', path.join(directory, 'b.tar.gz')]);
  assert.equal(pack.code, 0, pack.stderr);
  const manifest = await runCli([
    'release',
    'manifest',
    '--version',
    version,
    '--arch',
    ARCH,
    '-o',
    path.join(directory, 'manifest.json'),
    path.join(directory, 'b.tar.gz'),
  ]);
  assert.equal(manifest.code, 0, manifest.stderr);
  const packageBytes = await readFile(path.join(directory, 'b.tar.gz'));
  server.files.set('/manifest.json', await readFile(path.join(directory, 'manifest.json')));
  server.files.set('/b.tar.gz', packageBytes);
  const box = path.join(directory, 'box');
  await mkdir(path.join(box, 'docker'), { recursive: true });
  await writeFile(path.join(box, 'docker', 'docker-compose.yml'), 'services: {}\n');
  await writeFile(
    path.join(box, 'config.toml'),
    `[versions]\ndocker_service = "1.0.0"\n[server]\nmanifest_url = "${server.url}/manifest.json"\n[schedule]\nwindow = "${farWindow()}"\n[download]\nretries = 0\n`,
  );
  return { box, size: packageBytes.length };
}

export async function withServer(work: (server: FileServer, directory: string) => Promise<void>): Promise<void> {
  await withTempDir('daemon-cli', async (directory) => {
    const server = await new FileServer().start();
    try {
      await work(server, directory);
    } finally {
      await server.stop();
    }
  });
}
