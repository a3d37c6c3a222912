import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// dist/test/daemon → the repository; a build in another folder (NUWAX_DIST) runs from the repository.
const besideBuild = fileURLToPath(new URL('../../../deploy/nuwax.service', import.meta.url));
const UNIT = existsSync(besideBuild) ? besideBuild : path.resolve('deploy', 'nuwax.service');

/** `key=value` lines of a systemd unit, comments and sections dropped. */
async function directives(): Promise<Map<string, string>> {
  const lines = (await readFile(UNIT, 'utf8')).split('\n').filter((line) => /^[A-Za-z]+=/.test(line));
  return new Map(lines.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

test('deploy/nuwax.service runs the daemon so that a stop never cuts a switch short', async () => {
  const unit = await directives();
  assert.equal(unit.get('Type'), 'simple');
  assert.match(unit.get('ExecStart') ?? '', /^\/usr\/bin\/env nuwax --home \/opt\/nuwax .*daemon$/);
  assert.equal(unit.get('Restart'), 'on-failure');
  assert.equal(unit.get('KillSignal'), 'SIGTERM');
  // control-group would send SIGTERM to docker compose and migration scripts mid-switch too.
  assert.equal(unit.get('KillMode'), 'mixed');
  assert.ok(Number(unit.get('TimeoutStopSec')) >= 600, 'time for a rollback');
  assert.match(unit.get('After') ?? '', /docker\.service/);
});
