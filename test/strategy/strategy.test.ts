import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseManifest } from '../../src/manifest/index.js';
import { NuwaxError } from '../../src/errors/index.js';
import { decideStrategy, mapArch } from '../../src/strategy/index.js';
import { HOST_ARCH, nuwaxCliExample, nuwaxShaped, VARIANTS } from '../manifest/nuwax-cli.js';

const HASH = 'a'.repeat(64);
const full = (name: string) => ({ url: `https://r.example/${name}`, hash: `sha256:${HASH}`, size: 100 });

/** nuwax-cli's own manifest shape for 0.0.13.2: full packages per arch and a patch for 0.0.13.x. */
function manifest(extra: Record<string, unknown> = {}, version = '0.0.13.2') {
  return parseManifest(
    JSON.stringify({
      version,
      release_notes: 'notes',
      packages: { full: full('legacy-full.zip') },
      platforms: { x86_64: full('full-x86_64.tar.gz'), aarch64: full('full-aarch64.tar.gz') },
      patch: {
        x86_64: {
          ...full('patch-x86_64.tar.gz'),
          operations: { replace: { files: ['app/app.jar'], directories: ['front/'] }, delete: { files: ['old.txt'] } },
        },
        aarch64: { ...full('patch-aarch64.tar.gz'), operations: { replace: { files: ['app/app.jar'] } } },
      },
      ...extra,
    }),
  );
}

interface Row {
  name: string;
  current: string | null;
  arch?: string;
  manifest?: ReturnType<typeof manifest>;
  force?: boolean;
  compose?: boolean;
  downgrade?: boolean;
  unverified?: boolean;
  client?: string;
  expect: 'none' | 'full' | 'patch' | `E_${string}`;
  url?: string;
}

const now = new Date('2026-11-25T00:00:00Z');
const M = manifest();
const legacyOnly = parseManifest(JSON.stringify({ version: '1.2.0', packages: { full: full('docker.zip') } }));
const withFrom = manifest(
  { patch: { x86_64: { ...full('p.tar.gz'), from: ['1.0.0', '1.0.1.3'], operations: {} } } },
  '1.1.0',
);
const external = parseManifest(
  JSON.stringify({ version: '2.0.0', platforms: { x86_64: { url: 'https://r.example/x.tar.gz', hash: 'external' } } }),
);
const bareHex = parseManifest(
  JSON.stringify({ version: '2.0.0', platforms: { x86_64: { url: 'https://r.example/x.tar.gz', hash: HASH } } }),
);
const noAarch = parseManifest(JSON.stringify({ version: '2.0.0', platforms: { x86_64: full('x.tar.gz') } }));
const expired = manifest({ expires: '2026-11-24T00:00:00Z' });
const fresh = manifest({ expires: '2026-12-24T00:00:00Z' });
const newClient = manifest({ min_client: '9.0.0' });
const oldClient = manifest({ min_client: '0.1.0' });
const semverPre = parseManifest(JSON.stringify({ version: '1.5.0-rc.1', platforms: { x86_64: full('rc.tar.gz') } }));
const patchOnlyOtherArch = manifest({ patch: { aarch64: { ...full('pa.tar.gz'), operations: {} } } });

const rows: Row[] = [
  // nuwax-cli's own five cases (manifest 0.0.13.2)
  { name: 'nuwax-cli: current 0.0.13.2 is up to date', current: '0.0.13.2', expect: 'none' },
  { name: 'nuwax-cli: current 0.0.13.4 is newer than offered', current: '0.0.13.4', expect: 'none' },
  { name: 'nuwax-cli: current 0.0.12 needs the full package', current: '0.0.12', expect: 'full', url: 'full-x86_64' },
  { name: 'nuwax-cli: current 0.0.13 takes the patch', current: '0.0.13', expect: 'patch', url: 'patch-x86_64' },
  { name: 'nuwax-cli: current 0.0.13.2 with force takes full', current: '0.0.13.2', force: true, expect: 'full' },
  // patch rule without `from`: same base, lower level
  { name: 'same base, lower level 0.0.13.1 takes the patch', current: '0.0.13.1', expect: 'patch' },
  { name: 'different base 0.0.14 is newer: none', current: '0.0.14', expect: 'none' },
  { name: 'lower base 0.0.11.9 takes full', current: '0.0.11.9', expect: 'full' },
  { name: 'leading v on current is accepted', current: 'v0.0.13', expect: 'patch' },
  // arch mapping
  { name: 'arm64 host maps to aarch64 patch', current: '0.0.13', arch: 'arm64', expect: 'patch', url: 'patch-aarch64' },
  { name: 'arm64 host maps to aarch64 full', current: '0.0.12', arch: 'arm64', expect: 'full', url: 'full-aarch64' },
  { name: 'x64 host maps to x86_64 full', current: '0.0.12', arch: 'x64', expect: 'full', url: 'full-x86_64' },
  { name: 'unsupported arch ia32 is refused', current: '0.0.12', arch: 'ia32', expect: 'E_UNSUPPORTED_ARCH' },
  { name: 'unsupported arch riscv64 is refused', current: '0.0.12', arch: 'riscv64', expect: 'E_UNSUPPORTED_ARCH' },
  {
    name: 'missing arch with no legacy full is an error',
    current: '1.0.0',
    arch: 'arm64',
    manifest: noAarch,
    expect: 'E_NO_PACKAGE',
  },
  {
    name: 'patch only for the other arch falls back to full',
    current: '0.0.13',
    manifest: patchOnlyOtherArch,
    expect: 'full',
  },
  // missing compose file
  { name: 'missing compose file installs in full', current: '0.0.13', compose: false, expect: 'full' },
  {
    name: 'missing compose file and same version repairs in full',
    current: '0.0.13.2',
    compose: false,
    expect: 'full',
  },
  { name: 'first install with no version and no compose file', current: null, compose: false, expect: 'full' },
  { name: 'no recorded version but a compose file: full', current: null, expect: 'full' },
  { name: 'missing compose but offered is lower: still none', current: '0.0.14', compose: false, expect: 'none' },
  // `from`
  { name: 'patch whose from matches takes the patch', current: '1.0.0', manifest: withFrom, expect: 'patch' },
  { name: 'patch whose from matches a 4-part version', current: '1.0.1.3', manifest: withFrom, expect: 'patch' },
  { name: 'patch whose from does not match falls back to full', current: '1.0.1', manifest: withFrom, expect: 'full' },
  // downgrade
  { name: 'downgrade refused: none', current: '0.0.14', expect: 'none' },
  { name: 'downgrade allowed with --allow-downgrade takes full', current: '0.0.14', downgrade: true, expect: 'full' },
  // expiry and min_client
  { name: 'expired manifest is refused', current: '0.0.13', manifest: expired, expect: 'E_MANIFEST_EXPIRED' },
  { name: 'manifest expiring in the future is fine', current: '0.0.13', manifest: fresh, expect: 'patch' },
  { name: 'min_client above us is refused', current: '0.0.13', manifest: newClient, expect: 'E_CLIENT_TOO_OLD' },
  { name: 'min_client at or below us is fine', current: '0.0.13', manifest: oldClient, expect: 'patch' },
  // legacy and hashes
  {
    name: 'legacy packages-only manifest gives full',
    current: '1.1.0',
    manifest: legacyOnly,
    expect: 'full',
    url: 'docker.zip',
  },
  { name: 'legacy packages-only manifest, same version: none', current: '1.2.0', manifest: legacyOnly, expect: 'none' },
  { name: 'external hash is refused by default', current: '1.0.0', manifest: external, expect: 'E_UNVERIFIED' },
  {
    name: 'external hash accepted with allow_unverified',
    current: '1.0.0',
    manifest: external,
    unverified: true,
    expect: 'full',
  },
  { name: 'bare hex hash is accepted', current: '1.0.0', manifest: bareHex, expect: 'full' },
  // semver pre-release
  { name: 'semver pre-release above 1.4.0 is offered', current: '1.4.0', manifest: semverPre, expect: 'full' },
  { name: 'semver pre-release below 1.5.0 is not offered', current: '1.5.0', manifest: semverPre, expect: 'none' },
  { name: 'invalid installed version is an error', current: 'banana', expect: 'E_VERSION' },
];

// nuwax-cli's own example (0.0.13: unverified full packages, placeholder patch hashes), and variants.
const example = parseManifest(nuwaxCliExample());
const exampleText = nuwaxCliExample().toString('utf8');
const examplePatchLevel = parseManifest(exampleText.replace('"version": "0.0.13"', '"version": "0.0.13.2"'));
const shaped = (change: (manifest: ReturnType<typeof nuwaxShaped>) => void) => {
  const raw = nuwaxShaped();
  change(raw);
  return parseManifest(JSON.stringify(raw));
};
const hostNodeArch = HOST_ARCH === 'x86_64' ? 'x64' : 'arm64';
const otherArch = HOST_ARCH === 'x86_64' ? 'aarch64' : 'x86_64';
const set = (target: unknown, key: string, value: unknown) => {
  (target as Record<string, unknown>)[key] = value;
};

const compatibilityRows: Row[] = [
  ...VARIANTS.map(
    (variant): Row => ({
      name: `nuwax-cli variant: ${variant.name} (current ${variant.current}) gives ${variant.expect}`,
      current: variant.current,
      arch: hostNodeArch,
      manifest: parseManifest(JSON.stringify(variant.manifest)),
      unverified: variant.allowUnverified ?? false,
      expect: variant.expect,
      url: variant.url,
    }),
  ),
  {
    name: "nuwax-cli's example from 0.0.12 with allow_unverified: full",
    current: '0.0.12',
    manifest: example,
    unverified: true,
    expect: 'full',
    url: 'docker-arm64.zip',
  },
  { name: "nuwax-cli's example at 0.0.13: none", current: '0.0.13', manifest: example, expect: 'none' },
  {
    name: "nuwax-cli's example from 0.0.12 without allow_unverified: refused",
    current: '0.0.12',
    manifest: example,
    expect: 'E_UNVERIFIED',
  },
  {
    name: "a placeholder patch hash (nuwax-cli's example as 0.0.13.2) falls back to the full package",
    current: '0.0.13',
    manifest: examplePatchLevel,
    unverified: true,
    expect: 'full',
  },
  {
    name: 'a patch without a hash falls back to full unless allow_unverified',
    current: '1.4.0.1',
    manifest: shaped((m) => set(m.patch.x86_64, 'hash', null)),
    expect: 'full',
  },
  {
    name: 'a patch without a URL falls back to full',
    current: '1.4.0.1',
    manifest: shaped((m) => set(m.patch.x86_64, 'url', null)),
    expect: 'full',
  },
  {
    name: 'a patch with an unsafe operation path falls back to full',
    current: '1.4.0.1',
    manifest: shaped((m) => set(m.patch.x86_64!.operations, 'replace', { files: ['/etc/passwd'] })),
    expect: 'full',
  },
  {
    name: 'the full package to install with an ftp:// URL refuses the release',
    current: '1.3.0',
    manifest: shaped((m) => set(m.platforms.x86_64, 'url', 'ftp://r.example/full.zip')),
    expect: 'E_MANIFEST',
  },
  {
    name: 'the full package to install with a placeholder hash refuses the release',
    current: '1.3.0',
    manifest: shaped((m) => set(m.platforms.x86_64, 'hash', 'sha256:full_hash')),
    expect: 'E_MANIFEST',
  },
  {
    name: "the other arch's broken full package does not refuse this box's",
    current: '1.3.0',
    arch: hostNodeArch,
    manifest: shaped((m) => set(m.platforms[otherArch], 'url', '')),
    expect: 'full',
    url: `full-${HOST_ARCH}`,
  },
  {
    name: 'a platform entry without hash and size is unverified: refused by default',
    current: '1.3.0',
    manifest: shaped((m) => set(m.platforms, 'x86_64', { url: 'https://r.example/f.zip', signature: '' })),
    expect: 'E_UNVERIFIED',
  },
  {
    name: 'a platform entry without hash and size installs with allow_unverified',
    current: '1.3.0',
    manifest: shaped((m) => set(m.platforms, 'x86_64', { url: 'https://r.example/f.zip', signature: '' })),
    unverified: true,
    expect: 'full',
    url: 'f.zip',
  },
];

describe('strategy (SPEC 6) table', () => {
  test('has at least 30 rows', () => assert.ok(rows.length >= 30, `${rows.length} rows`));
  for (const row of [...rows, ...compatibilityRows]) {
    test(row.name, () => {
      const run = () =>
        decideStrategy({
          currentVersion: row.current,
          hostArch: row.arch ?? 'x64',
          manifest: row.manifest ?? M,
          forceFull: row.force ?? false,
          composeFileExists: row.compose ?? true,
          clientVersion: row.client ?? '0.5.0',
          allowDowngrade: row.downgrade ?? false,
          allowUnverified: row.unverified ?? false,
          now,
        });
      if (row.expect.startsWith('E_')) {
        assert.throws(run, (error: unknown) => error instanceof NuwaxError && error.code === row.expect);
        return;
      }
      const decision = run();
      assert.equal(decision.strategy, row.expect, decision.reason);
      if (row.url) {
        assert.ok(decision.strategy !== 'none' && decision.package.url.includes(row.url), JSON.stringify(decision));
      }
    });
  }
  test('a patch decision carries its operations', () => {
    const decision = decideStrategy({
      currentVersion: '0.0.13',
      hostArch: 'x64',
      manifest: M,
      forceFull: false,
      composeFileExists: true,
      clientVersion: '0.1.0',
      now,
    });
    assert.equal(decision.strategy, 'patch');
    assert.deepEqual(decision.strategy === 'patch' && decision.operations.replace.directories, ['front']);
    assert.deepEqual(decision.strategy === 'patch' && decision.operations.delete.files, ['old.txt']);
  });
  const decideFor = (release: typeof M, current: string, allowUnverified: boolean) =>
    decideStrategy({
      currentVersion: current,
      hostArch: 'x64',
      manifest: release,
      forceFull: false,
      composeFileExists: true,
      clientVersion: '0.5.0',
      allowUnverified,
      now,
    });
  test("nuwax-cli's example: the decision names why each placeholder patch is unusable, and warns of the unverified package", () => {
    const decision = decideFor(example, '0.0.12', true);
    assert.equal(decision.strategy, 'full');
    assert.deepEqual(
      decision.unusable.map((part) => part.part),
      ['patch.x86_64', 'patch.aarch64'],
    );
    assert.match(decision.unusable[0]!.reasons[0]!, /^hash: "sha256:patch_hash_x86_64" is not a SHA-256/);
    assert.equal(decision.warnings.length, 1);
    assert.match(decision.warnings[0]!, /^platforms\.x86_64 .* installed unverified .*allow_unverified/);
    assert.equal(decision.strategy === 'full' && decision.package.sha256, null);
    assert.equal(decision.strategy === 'full' && decision.package.size, null);
  });
  test('a patch that applies but cannot be used: the full decision says why', () => {
    const decision = decideFor(examplePatchLevel, '0.0.13', true);
    assert.equal(decision.strategy, 'full');
    assert.match(decision.reason, /patch from 0\.0\.13 for x86_64 cannot be used \(hash: "sha256:patch_hash_x86_64"/);
  });
  test('the full package that would be installed names its part and problem in the refusal', () => {
    const broken = shaped((m) => set(m.platforms.x86_64, 'hash', 'sha256:full_hash'));
    assert.throws(
      () => decideFor(broken, '1.3.0', false),
      (error: unknown) =>
        error instanceof NuwaxError && error.code === 'E_MANIFEST' && /platforms\.x86_64\.hash/.test(error.message),
    );
  });
  test('a verified release carries no warnings and nothing unusable', () => {
    const decision = decideFor(parseManifest(JSON.stringify(nuwaxShaped())), '1.4.0.1', false);
    assert.equal(decision.strategy, 'patch');
    assert.deepEqual([decision.warnings, decision.unusable], [[], []]);
  });
  test('mapArch maps node names and rejects others', () => {
    assert.equal(mapArch('x64'), 'x86_64');
    assert.equal(mapArch('arm64'), 'aarch64');
    assert.equal(mapArch('s390x'), null);
  });
});
