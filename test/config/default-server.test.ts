import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { NUWAX_CLI_DEFAULT_BASE_URL, parseConfig, serverChoice } from '../../src/config/index.js';
import { manifestUrlFor } from '../../src/manifest/index.js';

/** nuwax-cli's config.toml template, filled in: no [server], and the [updates] section nuwax-cli requires. */
const NUWAX_CLI_CONFIG = `[versions]
docker_service = "0.0.13"

[docker]
compose_file = "docker/docker-compose.yml"

[backup]
storage_dir = "backups"

[cache]
cache_dir = "cache"
download_dir = "cache/download"

[updates]
check_frequency = "0 2 * * *"
`;

// Only which URL would be used is asserted: nothing here opens a connection.
describe("nuwax-cli's default release server", () => {
  let saved: string | undefined;
  before(() => {
    saved = process.env.NUWAX_DEFAULT_BASE_URL;
    delete process.env.NUWAX_DEFAULT_BASE_URL;
  });
  after(() => {
    if (saved !== undefined) process.env.NUWAX_DEFAULT_BASE_URL = saved;
  });

  test("a nuwax-cli config without [server] uses nuwax-cli's DEFAULT_BASE_URL with the nuwax API", () => {
    const config = parseConfig(NUWAX_CLI_CONFIG);
    assert.equal(NUWAX_CLI_DEFAULT_BASE_URL, 'https://api-version.nuwax.com');
    assert.equal(config.server.base_url, 'https://api-version.nuwax.com');
    assert.equal(manifestUrlFor(config), 'https://api-version.nuwax.com/api/v1/docker/checkVersion');
    assert.deepEqual(serverChoice(config), { mode: 'base_url', isDefault: true });
  });

  test('$NUWAX_DEFAULT_BASE_URL replaces the default (a private mirror of it)', () => {
    process.env.NUWAX_DEFAULT_BASE_URL = 'http://127.0.0.1:9';
    try {
      const config = parseConfig(NUWAX_CLI_CONFIG);
      assert.equal(manifestUrlFor(config), 'http://127.0.0.1:9/api/v1/docker/checkVersion');
      assert.deepEqual(serverChoice(config), { mode: 'base_url', isDefault: true });
    } finally {
      delete process.env.NUWAX_DEFAULT_BASE_URL;
    }
  });

  test('a nuwax-cli config with a [server] section uses it', () => {
    const config = parseConfig(`${NUWAX_CLI_CONFIG}\n[server]\nmanifest_url = "http://127.0.0.1:8/m.json"\n`);
    assert.equal(config.server.base_url, undefined);
    assert.deepEqual(serverChoice(config), { mode: 'manifest_url', isDefault: false });
  });

  test("nuwax's own config without [server] (no [updates]) stays without a server: offline boxes", () => {
    for (const text of ['', '[versions]\ndocker_service = "1.0.0"\n', '[backup]\ninclude = ["data"]\n']) {
      const config = parseConfig(text);
      assert.equal(config.server.base_url, undefined);
      assert.equal(serverChoice(config), null);
      assert.throws(() => manifestUrlFor(config), { code: 'E_CONFIG' });
    }
  });

  test('naming the default server explicitly counts as the default', () => {
    const config = parseConfig('[server]\nbase_url = "https://api-version.nuwax.com/"\n');
    assert.deepEqual(serverChoice(config), { mode: 'base_url', isDefault: true });
  });
});
