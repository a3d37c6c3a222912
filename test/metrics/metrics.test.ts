import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { homePaths, parseConfig } from '../../src/config/index.js';
import { gatherFacts, type MetricsFacts, outcomeOf, renderMetrics } from '../../src/metrics/index.js';
import { openStore } from '../../src/state/index.js';
import { withOrigin } from '../fleet/origin.js';
import { runCli, withTempDir } from '../helpers/cli.js';

/**
 * The textfile is checked by Prometheus' own parser and linter, `promtool check metrics` (Debian's
 * `prometheus` package). CI requires it; elsewhere the format checks skip when it is missing.
 */
const promtool = spawnSync('promtool', ['--version']).status === 0;
const required = process.env.NUWAX_REQUIRE_PROMTOOL === '1' || process.env.NUWAX_REQUIRE_DOCKER === '1';
if (required && !promtool) throw new Error('promtool is required (apt-get install prometheus) and was not found');

function promtoolCheck(text: string): void {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(run.status, 0, `promtool check metrics:\n${run.stdout}${run.stderr}\n---\n${text}`);
  assert.equal(`${run.stdout}${run.stderr}`.trim(), '', 'no lint problems');
}

/** Samples as `name{labels}` → value, for asserting figures once promtool accepted the format. */
function samples(text: string): Map<string, number> {
  const result = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    result.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return result;
}

const full: MetricsFacts = {
  installedVersion: '1.4.0.1',
  stagedVersion: '1.4.0.2',
  lastCheck: { at: new Date('2026-11-20T10:00:00Z'), success: true },
  lastUpgrade: {
    finishedAt: new Date('2026-11-19T02:10:00Z'),
    outcome: 'rolled_back',
    from: '1.4.0',
    to: '1.4.0.1',
    strategy: 'patch',
    durationSeconds: 84.5,
    downtimeSeconds: 10.25,
  },
  downloadedBytesTotal: 123_456,
  services: { healthy: 3, unhealthy: 1 },
  disk: { freeBytes: 5e9, budgetBytes: 268_435_456 },
};

describe('metrics: the textfile content', () => {
  test('every fact becomes a sample that promtool accepts, names with units, HELP and TYPE', {
    skip: !promtool,
  }, () => {
    const text = renderMetrics(full);
    promtoolCheck(text);
    const values = samples(text);
    assert.equal(values.get('nuwax_installed_version_info{version="1.4.0.1"}'), 1);
    assert.equal(values.get('nuwax_staged_version_info{version="1.4.0.2"}'), 1);
    assert.equal(values.get('nuwax_last_check_timestamp_seconds'), Date.parse('2026-11-20T10:00:00Z') / 1000);
    assert.equal(values.get('nuwax_last_check_success'), 1);
    assert.equal(values.get('nuwax_last_upgrade_outcome{outcome="rolled_back"}'), 1);
    assert.equal(values.get('nuwax_last_upgrade_outcome{outcome="success"}'), 0);
    assert.equal(values.get('nuwax_last_upgrade_info{from="1.4.0",to="1.4.0.1",strategy="patch"}'), 1);
    assert.equal(values.get('nuwax_last_upgrade_duration_seconds'), 84.5);
    assert.equal(values.get('nuwax_last_upgrade_downtime_seconds'), 10.25);
    assert.equal(values.get('nuwax_downloaded_bytes_total'), 123_456);
    assert.equal(values.get('nuwax_services{state="unhealthy"}'), 1);
    assert.equal(values.get('nuwax_disk_free_bytes'), 5e9);
    assert.match(text, /^# TYPE nuwax_downloaded_bytes_total counter$/m);
    assert.match(text, /^# HELP nuwax_disk_budget_bytes .+$/m);
  });

  test('a fresh box: only what is known, still valid', { skip: !promtool }, () => {
    const text = renderMetrics({
      ...full,
      installedVersion: null,
      stagedVersion: null,
      lastCheck: null,
      lastUpgrade: null,
      services: null,
    });
    promtoolCheck(text);
    assert.doesNotMatch(text, /version_info|last_check|last_upgrade|nuwax_services/);
    assert.equal(samples(text).get('nuwax_downloaded_bytes_total'), 123_456);
  });

  test('label values are escaped: quotes, backslashes and newlines', { skip: !promtool }, () => {
    const text = renderMetrics({ ...full, installedVersion: 'a"b\\c\nd' });
    promtoolCheck(text);
    assert.match(text, /nuwax_installed_version_info\{version="a\\"b\\\\c\\nd"\} 1/);
  });
});

describe('metrics: facts from the state store', () => {
  test('the last switch, its outcome, duration and downtime; staged and check rows are not a switch', () =>
    withTempDir('metrics-store', async (home) => {
      const store = openStore(path.join(home, 'data', 'nuwax.db'));
      try {
        const begin = (to: string) =>
          store.upgrades.begin({
            fromVersion: '1.0.0',
            toVersion: to,
            strategy: 'full',
            trigger: 'manual',
            startedBy: 'test',
            reason: 'test',
          });
        const rolledBack = begin('1.1.0');
        store.upgrades.finish(rolledBack, 'failed', {
          status: 'failed',
          error: { code: 'E_HEALTH', message: 'x' },
          step: 'health_check',
          recovered: true,
        });
        const succeeded = begin('1.2.0');
        store.upgrades.finish(succeeded, 'success', { status: 'success', downtime_ms: 4200 });
        store.upgrades.finish(begin('1.3.0'), 'staged', { status: 'staged' });
        const paths = homePaths(home, parseConfig(''));
        const facts = await gatherFacts(store, '1.2.0', paths, null);
        assert.equal(facts.lastUpgrade?.outcome, 'success');
        assert.equal(facts.lastUpgrade?.to, '1.2.0');
        assert.equal(facts.lastUpgrade?.downtimeSeconds, 4.2);
        assert.ok(facts.lastUpgrade!.durationSeconds >= 0);
        assert.equal(outcomeOf(store.upgrades.get(rolledBack)!), 'rolled_back');
        assert.ok(facts.disk!.freeBytes > 0);
      } finally {
        store.close();
      }
    }));

  test('bytes downloaded is a counter: it keeps what removed downloads fetched', () =>
    withTempDir('metrics-counter', async (home) => {
      const store = openStore(path.join(home, 'data', 'nuwax.db'));
      try {
        const paths = homePaths(home, parseConfig(''));
        const hash = 'a'.repeat(64);
        store.downloads.save({
          ...{ url: 'http://x/p', path: '/tmp/p', size: 1000, hash, offset: 0, etag: null, lastModified: null },
          ...{ hashState: null, status: 'partial', error: null },
        });
        store.downloads.updateProgress(hash, 400);
        assert.equal((await gatherFacts(store, null, paths, null)).downloadedBytesTotal, 400);
        store.downloads.updateProgress(hash, 1000);
        assert.equal((await gatherFacts(store, null, paths, null)).downloadedBytesTotal, 1000);
        store.downloads.remove(hash);
        assert.equal((await gatherFacts(store, null, paths, null)).downloadedBytesTotal, 1000);
      } finally {
        store.close();
      }
    }));
});

describe('metrics: the file a daemon cycle writes', () => {
  test(
    'after a cycle that pre-stages, the textfile says installed, staged, checked and downloaded; written atomically',
    {
      skip: !promtool,
    },
    () =>
      withTempDir('metrics-textfile', async (collector) => {
        const textfile = path.join(collector, 'textfile_collector', 'nuwax.prom');
        await withOrigin(
          async ({ box, packageSize, stop }) => {
            const started = Date.now() / 1000;
            const run = await runCli(['--home', box, '--json', 'daemon', '--once']);
            assert.equal(run.code, 0, run.stdout + run.stderr);
            assert.equal(run.json().status, 'staged');
            const text = await readFile(textfile, 'utf8');
            promtoolCheck(text);
            const values = samples(text);
            assert.equal(values.get('nuwax_installed_version_info{version="1.0.0"}'), 1);
            assert.equal(values.get('nuwax_staged_version_info{version="1.1.0"}'), 1);
            assert.equal(values.get('nuwax_last_check_success'), 1);
            assert.ok(values.get('nuwax_last_check_timestamp_seconds')! >= Math.floor(started));
            assert.equal(values.get('nuwax_downloaded_bytes_total'), packageSize);
            assert.ok(values.get('nuwax_disk_free_bytes')! > 0);
            assert.ok(values.get('nuwax_disk_budget_bytes')! >= 2 * packageSize + 256 * 1024 * 1024);
            assert.deepEqual(await readdir(path.dirname(textfile)), ['nuwax.prom'], 'no temp file left beside it');

            // The origin goes away: the next cycle's check fails (the staged release stays); the file says so.
            await stop();
            const failed = await runCli(['--home', box, '--json', 'daemon', '--once']);
            assert.equal(failed.json().status, 'staged', failed.stdout + failed.stderr);
            const after = await readFile(textfile, 'utf8');
            promtoolCheck(after);
            assert.equal(samples(after).get('nuwax_last_check_success'), 0);
            assert.equal(samples(after).get('nuwax_downloaded_bytes_total'), packageSize);
            assert.equal(samples(after).get('nuwax_staged_version_info{version="1.1.0"}'), 1);
          },
          { config: `[metrics]\ntextfile = "${textfile}"\n` },
        );
      }),
  );
});
