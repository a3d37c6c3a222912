import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type StaticServer, startServer } from '../../src/release/index.js';
import { openStore } from '../../src/state/index.js';
import { runCli, withTempDir } from '../helpers/cli.js';

/**
 * A release made by `nuwax release pack|manifest`, served by nuwax's own `serve` on 127.0.0.1, and
 * a box (1.0.0, a far maintenance window so the daemon only pre-stages: no Docker needed).
 */
const ARCH = process.arch === 'arm64' ? 'aarch64' : 'x86_64';

/** A window twelve hours away. */
export function farWindow(): string {
  const start = (new Date().getHours() + 12) % 24;
  const hour = (value: number) => String(value % 24).padStart(2, '0');
  return `${hour(start)}:00-${hour(start + 1)}:00`;
}

export interface Origin {
  root: string;
  box: string;
  server: StaticServer;
  /** Stops the origin (once; the end of the test stops it too). */
  stop(): Promise<void>;
  packageSize: number;
  /** Rewrites the served manifest with this rollout (or none). */
  rollout(value: { percent: number; salt?: string } | null): Promise<void>;
  /** Files in the box's download cache. */
  cached(): Promise<string[]>;
}

export async function withOrigin(
  work: (origin: Origin) => Promise<void>,
  options: { clientId?: string | null; config?: string } = {},
): Promise<void> {
  await withTempDir('origin', async (directory) => {
    const root = path.join(directory, 'origin');
    const app = path.join(directory, 'release');
    await mkdir(path.join(app, 'web'), { recursive: true });
    await mkdir(root);
    await writeFile(path.join(app, 'web', 'index.html'), 'B\n');
    const pack = await runCli(['release', 'pack', app, '--version', '1.1.0', '-o', path.join(root, 'b.tar.gz')]);
    assert.equal(pack.code, 0, pack.stderr);
    const made = await runCli([
      ...['release', 'manifest', '--version', '1.1.0', '--arch', ARCH],
      ...['-o', path.join(directory, 'manifest.json'), path.join(root, 'b.tar.gz')],
    ]);
    assert.equal(made.code, 0, made.stderr);
    const manifest = JSON.parse(await readFile(path.join(directory, 'manifest.json'), 'utf8'));
    await writeFile(path.join(root, 'manifest.json'), JSON.stringify(manifest));
    const server = await startServer({ root, port: 0, host: '127.0.0.1' });
    const box = path.join(directory, 'box');
    await mkdir(path.join(box, 'docker'), { recursive: true });
    await writeFile(path.join(box, 'docker', 'docker-compose.yml'), 'services: {}\n');
    await writeFile(
      path.join(box, 'config.toml'),
      `[versions]\ndocker_service = "1.0.0"\n[server]\nmanifest_url = "${new URL('manifest.json', server.url)}"\n` +
        `[schedule]\nwindow = "${farWindow()}"\n[download]\nretries = 0\n${options.config ?? ''}`,
    );
    if (options.clientId) {
      const store = openStore(path.join(box, 'data', 'nuwax.db'));
      store.kv.set('client_id', options.clientId);
      store.close();
    }
    let stopped: Promise<void> | undefined;
    const stop = () => {
      stopped ??= server.close();
      return stopped;
    };
    const cacheDir = path.join(box, 'cache', 'downloads');
    const origin: Origin = {
      root,
      box,
      server,
      stop,
      packageSize: (await stat(path.join(root, 'b.tar.gz'))).size,
      rollout: (value) =>
        writeFile(path.join(root, 'manifest.json'), JSON.stringify({ ...manifest, rollout: value ?? undefined })),
      cached: async () => {
        try {
          return await readdir(cacheDir);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
          throw error;
        }
      },
    };
    try {
      await work(origin);
    } finally {
      await stop();
    }
  });
}
