import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateKeyPair, loadPrivateKey, signBytes } from '../../src/manifest/index.js';
import { runCli, withTempDir } from '../helpers/cli.js';
import { ReleaseServer } from '../helpers/release-server.js';
import { HOST_ARCH, nuwaxCliExample, VARIANTS } from '../manifest/nuwax-cli.js';

const HASH = 'b'.repeat(64);
const keys = generateKeyPair();
const otherKeys = generateKeyPair();

function manifestJson(version = '1.4.0.2', extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    version,
    release_date: '2026-11-20T10:00:00Z',
    release_notes: 'Faster startup',
    packages: { full: { url: 'full.tar.gz', hash: `sha256:${HASH}`, signature: '', size: 123 } },
    platforms: {
      x86_64: { url: 'full-x86_64.tar.gz', hash: `sha256:${HASH}`, size: 123 },
      aarch64: { url: 'full-aarch64.tar.gz', hash: HASH, size: 124 },
    },
    patch: {
      x86_64: {
        url: 'patch-x86_64.tar.gz',
        hash: `sha256:${HASH}`,
        size: 45,
        from: ['1.4.0.1'],
        operations: {
          replace: { files: ['app/app.jar'], directories: ['front/'] },
          delete: { files: ['old.txt'], directories: [] },
        },
      },
      aarch64: { url: 'patch-aarch64.tar.gz', hash: `sha256:${HASH}`, size: 46, from: ['1.4.0.1'], operations: {} },
    },
    ...extra,
  });
}

async function makeHome(
  home: string,
  config: string,
  options: { version?: string; compose?: boolean } = {},
): Promise<void> {
  const versions = options.version ? `[versions]\ndocker_service = "${options.version}"\n\n` : '';
  await writeFile(path.join(home, 'config.toml'), versions + config);
  if (options.compose !== false) {
    await mkdir(path.join(home, 'docker'), { recursive: true });
    await writeFile(path.join(home, 'docker', 'docker-compose.yml'), 'services: {}\n');
  }
}

describe('nuwax check against a real release server', () => {
  const server = new ReleaseServer();
  before(async () => {
    await server.start();
    server.set('/manifest.json', manifestJson());
    server.set(
      '/malformed.json',
      JSON.stringify({ version: '1.4.0.2', platforms: { x86_64: { url: 'x', hash: 'sha256:nothex' } } }),
    );
    server.set('/notjson.json', '{"version": ');
    const signed = Buffer.from(manifestJson());
    server.set('/signed.json', signed);
    server.set('/signed.json.sig', signBytes(signed, loadPrivateKey(keys.privateKeyPem)));
    server.set('/tampered.json', manifestJson('1.4.0.3'));
    server.set('/tampered.json.sig', signBytes(signed, loadPrivateKey(keys.privateKeyPem)));
    server.set('/nosig.json', signed);
  });
  after(() => server.stop());

  const check = (home: string, ...extra: string[]) => runCli(['--home', home, '--json', 'check', ...extra]);
  const at = (name: string) => `[server]\nmanifest_url = "${server.url}${name}"\n`;

  test('offers a patch when the installed version is in `from`, with the resolved URL', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, at('/manifest.json'), { version: '1.4.0.1' });
      const run = await check(home);
      assert.equal(run.code, 0, run.stderr);
      const result = run.json();
      assert.equal(result.strategy, 'patch');
      assert.equal(result.current, '1.4.0.1');
      assert.equal(result.offered, '1.4.0.2');
      assert.deepEqual(result.package, { url: `${server.url}/patch-x86_64.tar.gz`, size: 45, hash: `sha256:${HASH}` });
      assert.equal(result.signed, false);
      assert.equal(result.notes, 'Faster startup');
    }));

  test('offers the full package for an older base', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, at('/manifest.json'), { version: '1.3.0' });
      const run = await check(home);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.json().strategy, 'full');
    }));

  test('says none when up to date, and the human output is readable', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, at('/manifest.json'), { version: '1.4.0.2' });
      const run = await check(home);
      assert.equal(run.json().strategy, 'none');
      const human = await runCli(['--home', home, 'check']);
      assert.equal(human.code, 0);
      assert.match(human.stdout, /strategy: +none/);
    }));

  test('a second poll is a conditional GET answered 304', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, at('/manifest.json'), { version: '1.4.0.1' });
      const before304 = server.count(304);
      const first = await check(home);
      const second = await check(home);
      assert.equal(first.json().not_modified, false);
      assert.equal(second.json().not_modified, true);
      assert.equal(second.json().strategy, 'patch');
      assert.equal(server.count(304), before304 + 1);
    }));

  test('a signed manifest verifies with the configured key', () =>
    withTempDir('check', async (home) => {
      await makeHome(
        home,
        `${at('/signed.json')}\n[security]\npublic_keys = ["${otherKeys.publicKey}", "${keys.publicKey}"]\n`,
        { version: '1.4.0.1' },
      );
      const run = await check(home);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.json().signed, true);
    }));

  test('a tampered manifest fails with E_SIGNATURE and exit 1', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, `${at('/tampered.json')}\n[security]\npublic_keys = ["${keys.publicKey}"]\n`, {
        version: '1.4.0.1',
      });
      const run = await check(home);
      assert.equal(run.code, 1);
      assert.deepEqual((run.json().error as { code: string }).code, 'E_SIGNATURE');
      assert.match(run.stderr, /E_SIGNATURE/);
      assert.doesNotMatch(run.stderr, /at .*\.js:\d+/, 'no stack trace without --log-level debug');
    }));

  test('a missing signature fails with E_SIGNATURE when keys are configured', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, `${at('/nosig.json')}\n[security]\npublic_keys = ["${keys.publicKey}"]\n`, {
        version: '1.4.0.1',
      });
      const run = await check(home);
      assert.equal(run.code, 1);
      assert.equal((run.json().error as { code: string }).code, 'E_SIGNATURE');
    }));

  test('a malformed manifest fails with E_MANIFEST naming the field', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, at('/malformed.json'), { version: '1.4.0.1' });
      const run = await check(home);
      assert.equal(run.code, 1);
      const error = run.json().error as { code: string; message: string };
      assert.equal(error.code, 'E_MANIFEST');
      assert.match(error.message, /platforms\.x86_64\.hash/);
    }));

  test('a manifest that is not JSON fails with E_MANIFEST', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, at('/notjson.json'), { version: '1.4.0.1' });
      const run = await check(home);
      assert.equal(run.code, 1);
      assert.equal((run.json().error as { code: string }).code, 'E_MANIFEST');
    }));

  test('an unreachable server fails with a clear message, not a stack trace', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, '[server]\nmanifest_url = "http://127.0.0.1:9/manifest.json"\ntimeout = 5\n', {
        version: '1.4.0.1',
      });
      const run = await runCli(['--home', home, 'check']);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /E_NETWORK: Cannot reach the release server at http:\/\/127\.0\.0\.1:9/);
      assert.equal(run.stderr.trim().split('\n').length, 1);
    }));

  test('a missing file is E_HTTP 404', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, at('/nothing.json'), { version: '1.4.0.1' });
      const run = await check(home);
      assert.equal(run.code, 1);
      assert.equal((run.json().error as { code: string }).code, 'E_HTTP');
    }));

  test('nuwax API: registers once, sends X-Client-ID, re-registers after a 401', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, `[server]\nbase_url = "${server.url}"\n`, { version: '1.4.0.1' });
      const registrations = server.registrations;
      const first = await check(home);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.json().strategy, 'patch');
      assert.equal(server.registrations, registrations + 1);
      await check(home);
      assert.equal(server.registrations, registrations + 1, 'the client id is kept in SQLite');
      server.clients.clear();
      const third = await check(home);
      assert.equal(third.code, 0, third.stderr);
      assert.equal(server.registrations, registrations + 2);
      const last = server.requests.filter((request) => request.url === '/api/v1/docker/checkVersion').at(-1);
      assert.ok(typeof last?.headers['x-client-id'] === 'string');
    }));

  test('a first install (no compose file, no version) is full', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, at('/manifest.json'), { compose: false });
      const run = await check(home);
      assert.equal(run.json().strategy, 'full');
      assert.equal(run.json().current, null);
    }));

  test('a bad config names the key, the value and what was expected', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, '[download]\nretries = "lots"\n[schedule]\njitter = "soon"\n');
      const run = await runCli(['--home', home, 'check']);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /E_CONFIG/);
      assert.match(run.stderr, /download\.retries = "lots"/);
      assert.match(run.stderr, /schedule\.jitter = "soon"/);
    }));

  test('no server configured is E_CONFIG', () =>
    withTempDir('check', async (home) => {
      await makeHome(home, '');
      const run = await runCli(['--home', home, 'check']);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /E_CONFIG: No release server configured/);
    }));

  test('unknown command is a usage error, exit 2', async () => {
    const run = await runCli(['frobnicate']);
    assert.equal(run.code, 2);
  });
});

/** nuwax-cli's config.toml (its template): no [server], and the [updates] section nuwax-cli requires. */
function nuwaxCliConfig(version: string, extra = ''): string {
  return (
    `[versions]\ndocker_service = "${version}"\n\n[docker]\ncompose_file = "docker/docker-compose.yml"\n\n` +
    '[backup]\nstorage_dir = "backups"\n\n[cache]\ncache_dir = "cache"\ndownload_dir = "cache/download"\n\n' +
    `[updates]\ncheck_frequency = "0 2 * * *"\n${extra}`
  );
}

describe('nuwax check is a drop-in for nuwax-cli servers', () => {
  const server = new ReleaseServer();
  const example = nuwaxCliExample();
  before(async () => {
    await server.start();
    server.set('/nuwax-cli.json', example);
    server.set('/signed-nuwax-cli.json', example);
    server.set('/signed-nuwax-cli.json.sig', signBytes(example, loadPrivateKey(keys.privateKeyPem)));
    for (const [index, variant] of VARIANTS.entries())
      server.set(`/variant-${index}.json`, JSON.stringify(variant.manifest));
    server.set(
      '/releases/relative.json',
      JSON.stringify(VARIANTS.find((v) => v.name.startsWith('package URLs'))!.manifest),
    );
  });
  after(() => server.stop());

  const check = (home: string) => runCli(['--home', home, '--json', 'check']);
  const at = (name: string, security = '') => `[server]\nmanifest_url = "${server.url}${name}"\n${security}`;
  const unverified = '\n[security]\nallow_unverified = true\n';

  test("nuwax-cli's example from an older version: full, with a warning, naming why the placeholder patches are unusable", () =>
    withTempDir('compat', async (home) => {
      await makeHome(home, at('/nuwax-cli.json', unverified), { version: '0.0.12' });
      const run = await check(home);
      assert.equal(run.code, 0, run.stderr);
      const result = run.json() as Record<string, unknown> & {
        package: { url: string; size: number | null; hash: string };
        unusable: Array<{ part: string; reasons: string[] }>;
        warnings: string[];
      };
      assert.equal(result.strategy, 'full');
      assert.equal(result.offered, '0.0.13');
      assert.deepEqual(result.package, {
        url: 'https://nuwa-packages.oss-rg-china-mainland.aliyuncs.com/docker/20250712133533/docker-arm64.zip',
        size: null,
        hash: 'external',
      });
      assert.deepEqual(
        result.unusable.map((part) => part.part),
        ['patch.x86_64', 'patch.aarch64'],
      );
      assert.match(result.unusable[0]!.reasons.join(), /hash: "sha256:patch_hash_x86_64" is not a SHA-256/);
      assert.match(result.unusable[1]!.reasons.join(), /hash: "sha256:patch_hash_aarch64" is not a SHA-256/);
      assert.equal(result.warnings.length, 1);
      assert.match(result.warnings[0]!, new RegExp(`^platforms\\.${HOST_ARCH} .*allow_unverified`));
      assert.deepEqual(result.server, { url: `${server.url}/nuwax-cli.json`, mode: 'manifest_url', default: false });
    }));

  test("nuwax-cli's example at the same version: none", () =>
    withTempDir('compat', async (home) => {
      await makeHome(home, at('/nuwax-cli.json', unverified), { version: '0.0.13' });
      const run = await check(home);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.json().strategy, 'none');
      assert.equal((run.json().unusable as unknown[]).length, 2);
    }));

  test("nuwax-cli's example without allow_unverified: E_UNVERIFIED naming the setting, exit 1", () =>
    withTempDir('compat', async (home) => {
      await makeHome(home, at('/nuwax-cli.json'), { version: '0.0.12' });
      const run = await check(home);
      assert.equal(run.code, 1);
      const error = run.json().error as { code: string; message: string };
      assert.equal(error.code, 'E_UNVERIFIED');
      assert.match(error.message, /allow_unverified/);
    }));

  test('a signed nuwax-cli example is judged the same way: full, signed, the placeholder patches unusable', () =>
    withTempDir('compat', async (home) => {
      const security = `\n[security]\nallow_unverified = true\npublic_keys = ["${keys.publicKey}"]\n`;
      await makeHome(home, at('/signed-nuwax-cli.json', security), { version: '0.0.12' });
      const run = await check(home);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.json().strategy, 'full');
      assert.equal(run.json().signed, true);
      assert.equal((run.json().unusable as unknown[]).length, 2);
    }));

  test('the plain output names the server, the warning and the unusable parts', () =>
    withTempDir('compat', async (home) => {
      await makeHome(home, at('/nuwax-cli.json', unverified), { version: '0.0.12' });
      const run = await runCli(['--home', home, 'check']);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`server: +${server.url}/nuwax-cli\\.json\\n`));
      assert.match(run.stdout, /warning: +platforms\.\S+ .*installed unverified/);
      assert.match(run.stdout, /unusable: +patch\.x86_64: hash: "sha256:patch_hash_x86_64" is not a SHA-256/);
    }));

  VARIANTS.forEach((variant, index) => {
    test(`variant ${variant.name}: exit 0 and ${variant.expect} from ${variant.current}`, () =>
      withTempDir('compat', async (home) => {
        await makeHome(home, at(`/variant-${index}.json`, variant.allowUnverified ? unverified : ''), {
          version: variant.current,
        });
        const run = await check(home);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.json().strategy, variant.expect, String(run.json().reason));
        if (variant.url)
          assert.match((run.json().package as { url: string }).url, new RegExp(variant.url.replace(/\./g, '\\.')));
      }));
  });

  test('URLs starting with / are fetched from the server origin, not next to the manifest', () =>
    withTempDir('compat', async (home) => {
      await makeHome(home, at('/releases/relative.json'), { version: '1.4.0.1' });
      const run = await check(home);
      assert.equal(run.code, 0, run.stderr);
      assert.equal((run.json().package as { url: string }).url, `${server.url}/patches/patch-${HOST_ARCH}.tar.gz`);
    }));

  test("a nuwax-cli config without [server] uses nuwax-cli's default server with the nuwax API, and says so", () =>
    withTempDir('compat', async (home) => {
      // The default is replaced by the local server: a test never reaches nuwax's public one.
      server.apiManifest = '/variant-0.json';
      await makeHome(home, nuwaxCliConfig('1.4.0.1'));
      const env = { NUWAX_DEFAULT_BASE_URL: server.url };
      const registrations = server.registrations;
      const run = await runCli(['--home', home, '--json', 'check'], { env });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.json().strategy, 'patch');
      assert.deepEqual(run.json().server, {
        url: `${server.url}/api/v1/docker/checkVersion`,
        mode: 'base_url',
        default: true,
      });
      assert.equal(server.registrations, registrations + 1, 'registered with the API, as nuwax-cli does');
      const plain = await runCli(['--home', home, 'check'], { env });
      assert.match(plain.stdout, /server: +\S+\/api\/v1\/docker\/checkVersion \(nuwax-cli's default server/);
    }));

  test('a nuwax-cli config with a [server] section uses that server, not the default', () =>
    withTempDir('compat', async (home) => {
      await makeHome(home, nuwaxCliConfig('1.4.0.1', `\n${at('/variant-0.json')}`));
      const run = await runCli(['--home', home, '--json', 'check'], {
        env: { NUWAX_DEFAULT_BASE_URL: 'http://127.0.0.1:9' },
      });
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(run.json().server, {
        url: `${server.url}/variant-0.json`,
        mode: 'manifest_url',
        default: false,
      });
    }));
});
