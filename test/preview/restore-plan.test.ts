import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { downtimeHistory } from '../../src/preview/index.js';
import { openStore, storePathFor, type UpgradeRow } from '../../src/state/index.js';
import { runCli, withTempDir } from '../helpers/cli.js';
import { snapshot } from '../helpers/tree.js';
import { storeRows } from '../repair/box.js';

/** A home with a deployment, one manual backup and two past upgrades that took 4.2 s and 9.8 s of downtime. */
async function home(directory: string): Promise<number> {
  await writeFile(path.join(directory, 'config.toml'), '[versions]\ndocker_service = "1.0.0"\n');
  await mkdir(path.join(directory, 'docker', 'app'), { recursive: true });
  await mkdir(path.join(directory, 'docker', 'data'), { recursive: true });
  await writeFile(path.join(directory, 'docker', 'docker-compose.yml'), 'version: "2.4"\nservices: {}\n');
  await writeFile(path.join(directory, 'docker', 'app', 'app.txt'), 'v1\n'.repeat(1000));
  await writeFile(path.join(directory, 'docker', 'data', 'db.txt'), 'rows\n');
  const created = await runCli(['--home', directory, '--json', 'backup', 'create']);
  assert.equal(created.code, 0, created.stderr);
  const store = openStore(storePathFor(directory));
  try {
    for (const downtime of [4200, 9800]) {
      const id = store.upgrades.begin({
        fromVersion: '0.9.0',
        toVersion: '1.0.0',
        strategy: 'full',
        trigger: 'manual',
        startedBy: 'test',
        reason: null,
      });
      store.upgrades.finish(id, 'success', { status: 'success', downtime_ms: downtime });
    }
  } finally {
    store.close();
  }
  return created.json().id as number;
}

async function state(directory: string): Promise<unknown> {
  return { tree: await snapshot(directory), rows: storeRows(directory) };
}

describe('plans shown before they run', () => {
  test('backup restore ID --dry-run: what is replaced, the disk it needs; nothing changed', () =>
    withTempDir('plan', async (directory) => {
      const id = await home(directory);
      await writeFile(path.join(directory, 'docker', 'app', 'app.txt'), 'v2\n');
      const before = await state(directory);
      const run = await runCli(['--home', directory, '--json', 'backup', 'restore', String(id), '--dry-run']);
      assert.equal(run.code, 0, run.stderr);
      const plan = run.json();
      assert.equal(plan.dry_run, true);
      assert.equal(plan.changed, false);
      assert.deepEqual(plan.steps, ['applying']);
      assert.ok((plan.replaces as Array<{ path: string }>).some((item) => item.path === 'docker/app'));
      assert.ok((plan.disk as { needed: number }).needed >= 3000);
      assert.equal(plan.stops_services, false);
      assert.deepEqual(await state(directory), before);
      assert.equal(await readFile(path.join(directory, 'docker', 'app', 'app.txt'), 'utf8'), 'v2\n');
    }));

  test('rollback ID --dry-run: versions, steps, and the downtime the last upgrades took; nothing changed', () =>
    withTempDir('plan', async (directory) => {
      const id = await home(directory);
      const before = await state(directory);
      const run = await runCli(['--home', directory, '--json', 'rollback', String(id), '--dry-run']);
      assert.equal(run.code, 0, run.stderr);
      const plan = run.json();
      assert.deepEqual(plan.steps, ['stopping', 'applying', 'starting', 'health_check', 'committing']);
      const downtime = plan.downtime as { max_ms: number; median_ms: number; upgrades: unknown[] };
      assert.equal(downtime.upgrades.length, 2);
      assert.equal(downtime.max_ms, 9800);
      assert.deepEqual(await state(directory), before);
      const human = await runCli(['--home', directory, 'rollback', String(id), '--dry-run']);
      assert.match(human.stdout, /downtime: the last 2 switch\(es\) on this box took 9\.8 s, 4\.2 s/);
      assert.match(human.stdout, /replace docker\/app/);
    }));

  test('rollback --dry-run without a pre-upgrade backup says so (exit 1), nothing changed', () =>
    withTempDir('plan', async (directory) => {
      await home(directory);
      const before = await state(directory);
      const run = await runCli(['--home', directory, '--json', 'rollback', '--dry-run']);
      assert.equal(run.code, 1);
      assert.equal((run.json().error as { code: string }).code, 'E_BACKUP_NOT_FOUND');
      assert.deepEqual(await state(directory), before);
    }));

  test('doctor --json --output FILE writes the report to the file', () =>
    withTempDir('plan', async (directory) => {
      await home(directory);
      const file = path.join(directory, 'report.json');
      const run = await runCli(['--home', directory, '--json', 'doctor', '--output', file], {
        env: { PATH: path.join(directory, 'no-docker-here') },
      });
      const exported = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      assert.equal(exported.verdict, run.json().verdict);
      assert.deepEqual(exported.checks, run.json().checks);
      assert.equal(typeof exported.generated_at, 'string');
    }));

  test('the downtime history leaves repairs out and keeps the newest first', () => {
    const row = (id: number, trigger: string, downtime?: number) =>
      ({
        id,
        trigger,
        fromVersion: 'a',
        toVersion: 'b',
        startedAt: `t${id}`,
        result: { downtime_ms: downtime },
      }) as unknown as UpgradeRow;
    const history = downtimeHistory([
      row(4, 'repair', 100),
      row(3, 'daemon', 3000),
      row(2, 'manual'),
      row(1, 'manual', 1000),
    ]);
    assert.deepEqual(
      history.upgrades.map((item) => item.id),
      [3, 1],
    );
    assert.equal(history.median_ms, 1000);
    assert.equal(history.max_ms, 3000);
  });
});
