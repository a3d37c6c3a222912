import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NuwaxError } from '../../src/errors/index.js';
import { type Manifest, parseManifest, resolvePackageUrls } from '../../src/manifest/index.js';
import { nuwaxCliExample, nuwaxShaped, VARIANTS } from './nuwax-cli.js';

const parse = (value: unknown) => parseManifest(JSON.stringify(value));

function refusal(value: unknown): NuwaxError {
  try {
    parse(value);
  } catch (error) {
    assert.ok(error instanceof NuwaxError);
    return error;
  }
  assert.fail('the manifest was accepted');
}

describe("the manifest schema reads nuwax-cli's manifests as nuwax-cli does", () => {
  test("nuwax-cli's own example parses: nulls absent, unverified entries and placeholder hashes kept as such", () => {
    const manifest = parseManifest(nuwaxCliExample());
    assert.equal(manifest.version, '0.0.13');
    assert.equal(manifest.packages?.patch, undefined);
    assert.deepEqual(manifest.packages?.full?.hash, { algorithm: 'external' });
    assert.equal(manifest.packages?.full?.size, undefined, '"size": 0 is nuwax\'s "unknown"');
    for (const arch of ['x86_64', 'aarch64'] as const) {
      const platform = manifest.platforms?.[arch];
      assert.deepEqual(platform?.hash, { algorithm: 'external' }, `platforms.${arch} has no hash`);
      assert.equal(platform?.size, undefined);
      assert.deepEqual(platform?.problems, []);
      const patch = manifest.patch?.[arch];
      assert.deepEqual(patch?.hash, { algorithm: 'invalid', text: `sha256:patch_hash_${arch}` });
      assert.deepEqual(
        patch?.problems.map((problem) => problem.field),
        ['hash'],
      );
      assert.match(patch!.problems[0]!.message, /is not a SHA-256/);
      assert.deepEqual(patch?.operations.replace.directories, ['front', 'plugins', 'templates']);
    }
    assert.equal(manifest.patch?.aarch64?.notes, 'patch包目录结构与docker.zip保持一致');
  });

  for (const variant of VARIANTS) {
    test(`accepts ${variant.name}`, () => {
      assert.doesNotThrow(() => parse(variant.manifest));
    });
  }

  test('null means absent: a manifest with nulls parses as the one without those keys', () => {
    const withNulls = nuwaxShaped();
    const without = nuwaxShaped();
    const patch = withNulls.patch.x86_64!;
    Object.assign(patch, { hash: null, signature: null, notes: null });
    (patch.operations as Record<string, unknown>).delete = null;
    Object.assign(withNulls, { release_notes: null, mirrors: null, expires: null, min_client: null });
    (withNulls.platforms as Record<string, unknown>).aarch64 = null;
    const bare = without.patch.x86_64!;
    delete bare.hash;
    delete bare.signature;
    delete bare.notes;
    delete (bare.operations as Record<string, unknown>).delete;
    delete without.release_notes;
    delete (without.platforms as Record<string, unknown>).aarch64;
    // Compared as JSON: a key read as null stays as undefined, which JSON leaves out like an absent key.
    const asJson = (value: unknown) => JSON.parse(JSON.stringify(value));
    assert.deepEqual(asJson(parse(withNulls)), asJson(parse(without)));
    const parsed = parse(withNulls);
    assert.deepEqual(parsed.patch?.x86_64?.operations.delete, { files: [], directories: [] });
    assert.deepEqual(parsed.patch?.x86_64?.hash, { algorithm: 'external' });
  });

  test('a leading v (or V) is read and dropped, as nuwax-cli prints its versions', () => {
    assert.equal(parse({ ...nuwaxShaped(), version: 'v1.0.2' }).version, '1.0.2');
    assert.equal(parse({ ...nuwaxShaped(), version: 'V1.0.2.4' }).version, '1.0.2.4');
    const withFrom = nuwaxShaped();
    withFrom.patch.x86_64!.from = ['v1.4.0.1'];
    assert.deepEqual(parse(withFrom).patch?.x86_64?.from, ['1.4.0.1']);
    assert.equal(refusal({ ...nuwaxShaped(), version: 'vv1.0.2' }).code, 'E_MANIFEST');
  });

  test('validate(): "platforms", when present, names at least one arch', () => {
    for (const platforms of [{}, { x86_64: null, aarch64: null }]) {
      const error = refusal({ ...nuwaxShaped(), platforms });
      assert.equal(error.code, 'E_MANIFEST');
      assert.match(error.message, /platforms: expected at least one of x86_64 and aarch64/);
    }
  });

  test('validate(): "patch", when present, names at least one arch', () => {
    const error = refusal({ ...nuwaxShaped(), patch: { x86_64: null } });
    assert.equal(error.code, 'E_MANIFEST');
    assert.match(error.message, /patch: expected at least one of x86_64 and aarch64/);
  });

  test('validate(): a URL that is empty, missing or neither http(s) nor a path is a problem of its entry only', () => {
    const manifest = nuwaxShaped();
    (manifest.platforms.aarch64 as Record<string, unknown>).url = '';
    (manifest.packages.full as Record<string, unknown>).url = 'ftp://r.example/docker.zip';
    delete manifest.patch.x86_64!.url;
    const parsed = parse(manifest);
    assert.deepEqual(
      parsed.platforms?.aarch64?.problems.map((problem) => problem.field),
      ['url'],
    );
    assert.match(parsed.packages!.full!.problems[0]!.message, /neither http\(s\) nor a path on the server/);
    assert.deepEqual(
      parsed.patch?.x86_64?.problems.map((problem) => problem.field),
      ['url'],
    );
    assert.deepEqual(parsed.platforms?.x86_64?.problems, [], 'the other entries stay usable');
  });

  test('an unsafe operation path spoils its patch, not the release', () => {
    const manifest = nuwaxShaped();
    (manifest.patch.x86_64!.operations as { delete: { files: string[] } }).delete.files = ['../../etc/passwd'];
    const parsed = parse(manifest);
    assert.deepEqual(
      parsed.patch?.x86_64?.problems.map((problem) => problem.field),
      ['operations.delete.files'],
    );
    assert.deepEqual(parsed.patch?.aarch64?.problems, []);
  });

  test('a URL starting with / resolves against the server, others against the manifest', () => {
    const manifest = nuwaxShaped();
    (manifest.platforms.x86_64 as Record<string, unknown>).url = '/packages/full.zip';
    (manifest.platforms.aarch64 as Record<string, unknown>).url = 'full-aarch64.zip';
    delete manifest.patch.x86_64!.url;
    const resolved: Manifest = resolvePackageUrls(parse(manifest), 'http://127.0.0.1:8/api/v1/docker/checkVersion');
    assert.equal(resolved.platforms?.x86_64?.url, 'http://127.0.0.1:8/packages/full.zip');
    assert.equal(resolved.platforms?.aarch64?.url, 'http://127.0.0.1:8/api/v1/docker/full-aarch64.zip');
    assert.equal(resolved.patch?.x86_64?.url, '', 'an entry without a URL is left for its problems to explain');
  });
});
