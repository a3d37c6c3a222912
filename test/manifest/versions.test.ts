import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareVersions, isValidVersion, parseVersion } from '../../src/versions/index.js';

test('4-part versions order by base then patch level', () => {
  const sorted = ['0.0.14', '0.0.13.2', '0.0.13', '0.0.13.10', '0.0.12.99', 'v0.0.13.1'].sort(compareVersions);
  assert.deepEqual(sorted, ['0.0.12.99', '0.0.13', 'v0.0.13.1', '0.0.13.2', '0.0.13.10', '0.0.14']);
});

test('0.0.13 equals 0.0.13.0', () => assert.equal(compareVersions('0.0.13', '0.0.13.0'), 0));

test('semver pre-releases sort below their release', () => {
  assert.ok(compareVersions('1.5.0-rc.1', '1.5.0') < 0);
  assert.ok(compareVersions('1.5.0-rc.1', '1.4.9.9') > 0);
});

test('garbage is not a version', () => {
  for (const bad of ['', 'banana', '1.2', '1.2.3.4.5', '1..2.3', '../1.2.3'])
    assert.equal(isValidVersion(bad), false, bad);
  assert.equal(parseVersion('v1.2.3')?.level, 0);
});
