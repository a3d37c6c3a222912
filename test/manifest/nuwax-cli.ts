import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mapArch } from '../../src/strategy/index.js';

/** nuwax-cli's own example manifest (fixtures/README.md names its origin), read from the source tree. */
export const NUWAX_CLI_EXAMPLE_PATH = fileURLToPath(
  new URL('../../../test/manifest/fixtures/nuwax-cli-docker-update.json', import.meta.url),
);
export const nuwaxCliExample = (): Buffer => readFileSync(NUWAX_CLI_EXAMPLE_PATH);

/** This host's arch as the manifest names it, and the other one (variants null the other arch). */
export const HOST_ARCH = mapArch(process.arch) ?? 'x86_64';
export const OTHER_ARCH = HOST_ARCH === 'x86_64' ? 'aarch64' : 'x86_64';

const HASH = 'c'.repeat(64);
const entry = (name: string, size: number) => ({
  url: `https://r.example/${name}`,
  hash: `sha256:${HASH}`,
  signature: '',
  size,
});
const patchEntry = (arch: string) => ({
  url: `https://r.example/patch-${arch}.tar.gz`,
  hash: `sha256:${HASH}`,
  signature: `patch_signature_${arch}`,
  operations: {
    replace: { files: ['app/app.jar'], directories: ['front/'] },
    delete: { files: ['old.txt'], directories: [] },
  },
  notes: 'patch notes',
});

/**
 * A verified release in nuwax-cli's shape (no `from`: its own patch rule, same base and a lower
 * level): 1.4.0.1 takes the patch, 1.3.0 the full package, 1.4.0.2 nothing.
 */
export function nuwaxShaped(): Record<string, unknown> & {
  packages: Record<string, unknown>;
  platforms: Record<string, unknown>;
  patch: Record<string, Record<string, unknown>>;
} {
  return {
    version: '1.4.0.2',
    release_date: '2026-11-20T10:00:00Z',
    release_notes: 'notes',
    packages: { full: entry('docker.zip', 300), patch: null },
    platforms: { x86_64: entry('full-x86_64.zip', 301), aarch64: entry('full-aarch64.zip', 302) },
    patch: { x86_64: patchEntry('x86_64'), aarch64: patchEntry('aarch64') },
  };
}

export interface Variant {
  name: string;
  manifest: Record<string, unknown>;
  current: string;
  /** What nuwax-cli would choose, and what nuwax chooses. */
  expect: 'none' | 'full' | 'patch';
  /** A substring of the chosen package's URL. */
  url?: string;
  allowUnverified?: boolean;
}

function variant(change: (manifest: ReturnType<typeof nuwaxShaped>) => void): ReturnType<typeof nuwaxShaped> {
  const manifest = nuwaxShaped();
  change(manifest);
  return manifest;
}

/** Every null nuwax-cli's serde model accepts, a leading `v`, and URLs on the server, each with nuwax-cli's choice. */
export const VARIANTS: Variant[] = [
  {
    name: '"packages": null',
    manifest: variant((m) => {
      (m as Record<string, unknown>).packages = null;
    }),
    current: '1.4.0.1',
    expect: 'patch',
  },
  {
    name: '"packages": {"full": …, "patch": null}',
    manifest: nuwaxShaped(),
    current: '1.3.0',
    expect: 'full',
    url: `full-${HOST_ARCH}`,
  },
  {
    name: '"platforms": null takes packages.full',
    manifest: variant((m) => {
      (m as Record<string, unknown>).platforms = null;
    }),
    current: '1.3.0',
    expect: 'full',
    url: 'docker.zip',
  },
  {
    name: `"platforms": {"${HOST_ARCH}": {…}, "${OTHER_ARCH}": null}`,
    manifest: variant((m) => {
      m.platforms[OTHER_ARCH] = null;
    }),
    current: '1.3.0',
    expect: 'full',
    url: `full-${HOST_ARCH}`,
  },
  {
    name: '"patch": null falls to the full package',
    manifest: variant((m) => {
      (m as Record<string, unknown>).patch = null;
    }),
    current: '1.4.0.1',
    expect: 'full',
    url: `full-${HOST_ARCH}`,
  },
  {
    name: `"patch": {"${HOST_ARCH}": {…}, "${OTHER_ARCH}": null}`,
    manifest: variant((m) => {
      (m.patch as Record<string, unknown>)[OTHER_ARCH] = null;
    }),
    current: '1.4.0.1',
    expect: 'patch',
    url: `patch-${HOST_ARCH}`,
  },
  {
    name: 'a patch entry with "hash": null is used with allow_unverified',
    manifest: variant((m) => {
      m.patch[HOST_ARCH]!.hash = null;
    }),
    current: '1.4.0.1',
    expect: 'patch',
    allowUnverified: true,
  },
  {
    name: 'a patch entry with "signature": null',
    manifest: variant((m) => {
      m.patch[HOST_ARCH]!.signature = null;
    }),
    current: '1.4.0.1',
    expect: 'patch',
  },
  {
    name: 'a patch entry with "notes": null',
    manifest: variant((m) => {
      m.patch[HOST_ARCH]!.notes = null;
    }),
    current: '1.4.0.1',
    expect: 'patch',
  },
  {
    name: '"operations": {"replace": {…}, "delete": null}',
    manifest: variant((m) => {
      (m.patch[HOST_ARCH]!.operations as Record<string, unknown>).delete = null;
    }),
    current: '1.4.0.1',
    expect: 'patch',
  },
  {
    name: '"operations": {"replace": null, "delete": {…}}',
    manifest: variant((m) => {
      (m.patch[HOST_ARCH]!.operations as Record<string, unknown>).replace = null;
    }),
    current: '1.4.0.1',
    expect: 'patch',
  },
  {
    name: 'release_notes, release_date and a platform signature null',
    manifest: variant((m) => {
      m.release_notes = null;
      m.release_date = null;
      (m.platforms[HOST_ARCH] as Record<string, unknown>).signature = null;
    }),
    current: '1.3.0',
    expect: 'full',
  },
  {
    name: 'a version written "v1.4.0.2" takes the patch from 1.4.0.1',
    manifest: variant((m) => {
      m.version = 'v1.4.0.2';
    }),
    current: '1.4.0.1',
    expect: 'patch',
  },
  {
    name: 'a version written "v1.4.0.2" is up to date at 1.4.0.2',
    manifest: variant((m) => {
      m.version = 'v1.4.0.2';
    }),
    current: '1.4.0.2',
    expect: 'none',
  },
  {
    name: 'a three-part "v1.5.0" from 1.4.0.2 is a full upgrade',
    manifest: variant((m) => {
      m.version = 'v1.5.0';
    }),
    current: '1.4.0.2',
    expect: 'full',
  },
  {
    name: 'package URLs starting with / are paths on the server',
    manifest: variant((m) => {
      (m.platforms[HOST_ARCH] as Record<string, unknown>).url = `/packages/full-${HOST_ARCH}.zip`;
      m.patch[HOST_ARCH]!.url = `/patches/patch-${HOST_ARCH}.tar.gz`;
    }),
    current: '1.4.0.1',
    expect: 'patch',
    url: `/patches/patch-${HOST_ARCH}.tar.gz`,
  },
  {
    name: 'a full package URL starting with / is a path on the server',
    manifest: variant((m) => {
      (m.platforms[HOST_ARCH] as Record<string, unknown>).url = `/packages/full-${HOST_ARCH}.zip`;
    }),
    current: '1.3.0',
    expect: 'full',
    url: `/packages/full-${HOST_ARCH}.zip`,
  },
];
