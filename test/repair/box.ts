import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { generateKeyPair, loadPrivateKey, signBytes } from '../../src/manifest/index.js';
import { DockerRuntime } from '../../src/runtime/index.js';
import { openStore, storePathFor } from '../../src/state/index.js';
import { runCli } from '../helpers/cli.js';
import { projectContainers, uniqueName } from '../helpers/docker.js';
import type { ReleaseServer } from '../helpers/release-server.js';
import { snapshot } from '../helpers/tree.js';

/** A signed manifest of the installed version: doctor's release checks say ok, so a healthy box is READY. */
export const keys = generateKeyPair();

export function publishManifest(server: ReleaseServer): string {
  const body = Buffer.from(
    JSON.stringify({
      version: '1.0.0',
      release_date: '2026-11-20T10:00:00Z',
      platforms: { x86_64: { url: 'full.tar.gz', hash: `sha256:${'c'.repeat(64)}`, size: 4096 } },
    }),
  );
  server.set('/manifest.json', body);
  server.set('/manifest.json.sig', signBytes(body, loadPrivateKey(keys.privateKeyPem)));
  return `${server.url}/manifest.json`;
}

export interface Box {
  home: string;
  project: string;
  runtime: DockerRuntime;
}

/** A home with config.toml, docker/docker-compose.yml (as given) and a state store, its services up. */
export async function makeBox(home: string, compose: string, manifestUrl: string, up = true): Promise<Box> {
  const project = uniqueName('repair');
  await writeFile(
    path.join(home, 'config.toml'),
    `[versions]\ndocker_service = "1.0.0"\n\n[docker]\nproject_name = "${project}"\n\n[server]\nmanifest_url = "${manifestUrl}"\ntimeout = 5\n\n[security]\npublic_keys = ["${keys.publicKey}"]\n\n[health]\ntimeout = "60s"\nsettle = "1s"\n`,
  );
  await mkdir(path.join(home, 'docker', 'data'), { recursive: true });
  await writeFile(path.join(home, 'docker', 'docker-compose.yml'), compose);
  await writeFile(path.join(home, 'docker', 'data', 'app.db'), 'the application data\n');
  openStore(storePathFor(home)).close();
  const runtime = new DockerRuntime({
    dockerDir: path.join(home, 'docker'),
    composeFile: path.join(home, 'docker', 'docker-compose.yml'),
    projectName: project,
  });
  if (up) {
    await runtime.up({ timeoutMs: 120_000 });
    const report = await runtime.health({ settleMs: 1000, timeoutMs: 60_000 });
    if (!report.healthy) throw new Error(`the box did not come up: ${JSON.stringify(report.services)}`);
  }
  return { home, project, runtime };
}

/** Every row of every table of the state store. */
export function storeRows(home: string): Record<string, unknown[]> {
  const db = new Database(storePathFor(home));
  try {
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as Array<{
      name: string;
    }>;
    return Object.fromEntries(tables.map(({ name }) => [name, db.prepare(`SELECT * FROM "${name}"`).all()]));
  } finally {
    db.close();
  }
}

/** What a dry run must leave exactly as it was: the home's tree, the store's rows, the containers. */
export async function boxState(box: Box): Promise<unknown> {
  const tree = await snapshot(box.home);
  const rows = storeRows(box.home);
  const containers = (await projectContainers(box.project)).map((item) => `${item.service} ${item.id} ${item.status}`);
  return { tree, rows, containers: containers.sort() };
}

export const repair = (home: string, ...args: string[]) =>
  runCli(['--home', home, '--json', 'repair', ...args], { timeoutMs: 180_000 });

export const doctorVerdict = async (home: string): Promise<string> =>
  (await runCli(['--home', home, '--json', 'doctor'])).json().verdict as string;
