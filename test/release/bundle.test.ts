import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, watch, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import tarStream from 'tar-stream';
import { CLI_PATH, runCli, type CliRun } from '../helpers/cli.js';
import { ReleaseServer } from '../helpers/release-server.js';
import { temporaryFolder, writeTree } from '../apply/trees.js';

/**
 * Issue 7, offline bundles, through the real CLI: `release bundle` of a signed release (full and
 * patch), `import` into a box whose server is down, and every way a bundle can be bad. Each
 * refusal asserts the state after it: nothing staged, nothing in the download cache.
 */
const ARCH = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const A = { 'docker-compose.yml': 'services: {}\n', 'web/index.html': 'A\n' };

interface RawEntry {
  header: tarStream.Header;
  body: Buffer;
}

let folder: ReturnType<typeof temporaryFolder>;
let releaseDir = '';
let publicKey = '';
let goodBundle = '';
let deadUrl = '';

async function ok(args: string[]): Promise<CliRun> {
  const run = await runCli(args);
  assert.equal(run.code, 0, `nuwax ${args.join(' ')}: ${run.stdout}${run.stderr}`);
  return run;
}

/** A URL nobody listens on: a port the system gave and took back. */
async function deadServerUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/manifest.json`;
}

async function readEntries(file: string): Promise<RawEntry[]> {
  const extract = tarStream.extract();
  const entries: RawEntry[] = [];
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.push({ header: entry.header, body: Buffer.concat(chunks) });
    }
  })();
  extract.end(readFileSync(file));
  await reading;
  return entries;
}

async function writeEntries(file: string, entries: RawEntry[]): Promise<string> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const done = new Promise<void>((resolve) => pack.on('end', resolve));
  for (const entry of entries) {
    if (entry.header.type === 'file') pack.entry({ ...entry.header, size: entry.body.length }, entry.body);
    else pack.entry({ ...entry.header, size: 0 });
  }
  pack.finalize();
  await done;
  writeFileSync(file, Buffer.concat(chunks));
  return file;
}

/** A copy of the good bundle with its entries changed by `change`. */
async function altered(name: string, change: (entries: RawEntry[]) => RawEntry[]): Promise<string> {
  return writeEntries(path.join(folder.dir, `${name}.tar`), change(await readEntries(goodBundle)));
}

const isPackage = (entry: RawEntry) => entry.header.name.startsWith('packages/');
const plainFile = (name: string, body: string): RawEntry => ({
  header: { name, size: body.length, mode: 0o644, mtime: new Date(), type: 'file' } as tarStream.Header,
  body: Buffer.from(body),
});

type Change = (entries: RawEntry[]) => RawEntry[];
/** `hostile` after the metadata, before the packages. */
const inserted =
  (hostile: RawEntry): Change =>
  (entries) => [...entries.slice(0, 3), hostile, ...entries.slice(3)];
/** The index rewritten by `change` (the signature covers the manifest only: the index is the reader's to check). */
const withIndex =
  (change: (index: { packages: Array<Record<string, unknown> | null> } & Record<string, unknown>) => void): Change =>
  (entries) => {
    const index = JSON.parse(entries[0]!.body.toString('utf8'));
    change(index);
    return [{ ...entries[0]!, body: Buffer.from(JSON.stringify(index)) }, ...entries.slice(1)];
  };
/** One byte of the first package flipped. */
const tamperedPackage: Change = (entries) => {
  const index = entries.findIndex(isPackage);
  const body = Buffer.from(entries[index]!.body);
  body[body.length >> 1] ^= 0xff;
  return entries.with(index, { ...entries[index]!, body });
};

/** A box on 1.0.0 (docker/ as release A) whose release server is down and which trusts the release key. */
function box(name: string): string {
  const home = path.join(folder.dir, 'boxes', name);
  writeTree(path.join(home, 'docker'), A);
  writeFileSync(
    path.join(home, 'config.toml'),
    `[versions]\ndocker_service = "1.0.0"\n[server]\nmanifest_url = "${deadUrl}"\ntimeout = 5\n[security]\npublic_keys = ["${publicKey}"]\n[download]\nretries = 0\n`,
  );
  return home;
}

const cacheFiles = (home: string) =>
  existsSync(path.join(home, 'cache', 'downloads')) ? readdirSync(path.join(home, 'cache', 'downloads')) : [];

async function staged(home: string): Promise<{ version: string; strategy: string } | null> {
  return (await ok(['--home', home, '--json', 'status'])).json().staged as { version: string; strategy: string } | null;
}

/** The import is refused with `code`, exit 1, and the box is as before: nothing staged, nothing cached. */
async function assertRefused(bundle: string, code: string, boxName: string): Promise<CliRun> {
  const home = box(boxName);
  const run = await runCli(['--home', home, '--json', 'import', bundle, '--yes']);
  assert.equal(run.code, 1, run.stdout + run.stderr);
  assert.match(run.stderr, new RegExp(`${code}: `));
  assert.deepEqual(
    { status: run.json().status, code: (run.json().error as { code: string }).code, changed: run.json().changed },
    { status: 'failed', code, changed: false },
  );
  assert.equal(await staged(home), null);
  assert.deepEqual(cacheFiles(home), [], 'no package, partial or temp file left in the cache');
  return run;
}

const isImportTemporary = (name: string) => /^\.[0-9a-f]{64}\.import\.tmp$/.test(name);

/** The import of `bundle` succeeded, staged 1.1.0 and left its `packages` in the cache, and no temp file. */
async function assertImported(home: string, bundle: string, packages: number): Promise<void> {
  const run = await runCli(['--home', home, '--json', 'import', bundle, '--yes']);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.deepEqual([run.json().status, run.json().version], ['staged', '1.1.0']);
  assert.equal((await staged(home))?.version, '1.1.0');
  const cached = cacheFiles(home);
  assert.equal(cached.filter((name) => /^[0-9a-f]{64}\.tar\.gz$/.test(name)).length, packages, `${cached}`);
  assert.deepEqual(cached.filter(isImportTemporary), [], 'no temp file left');
}

/**
 * `import` as a child process, killed with SIGKILL once a temp copy is in the cache and has grown:
 * an import cut off with no chance to clean up (kill -9, power loss). The cache's files after it.
 */
async function killImportMidCopy(home: string): Promise<string[]> {
  const downloads = path.join(home, 'cache', 'downloads');
  mkdirSync(downloads, { recursive: true });
  const child = spawn(process.execPath, [CLI_PATH, '--home', home, '--json', 'import', goodBundle, '--yes'], {
    stdio: 'ignore',
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const killIfGrown = () => {
    const grown = readdirSync(downloads).some(
      (name) =>
        isImportTemporary(name) && (statSync(path.join(downloads, name), { throwIfNoEntry: false })?.size ?? 0) > 0,
    );
    if (grown) child.kill('SIGKILL');
  };
  // inotify tells at once; the poll is there for file systems where it does not.
  const watcher = watch(downloads, killIfGrown);
  const poll = setInterval(killIfGrown, 2);
  try {
    assert.equal(await exited, 'SIGKILL', 'killed mid-copy, not left to finish');
  } finally {
    watcher.close();
    clearInterval(poll);
  }
  return readdirSync(downloads);
}

before(async () => {
  folder = temporaryFolder('bundle');
  deadUrl = await deadServerUrl();
  // B: a changed page and a 4 MiB blob (random: it does not compress), as a full package and a patch from A.
  writeTree(path.join(folder.dir, 'v1'), A);
  writeTree(path.join(folder.dir, 'v2'), { ...A, 'web/index.html': 'B\n' });
  writeFileSync(path.join(folder.dir, 'v2', 'web', 'blob.bin'), randomBytes(4 * 1024 * 1024));
  releaseDir = path.join(folder.dir, 'release');
  mkdirSync(releaseDir);
  const full = path.join(releaseDir, 'full-1.1.0.tar.gz');
  const patch = path.join(releaseDir, 'patch-1.1.0.tar.gz');
  await ok(['release', 'pack', path.join(folder.dir, 'v2'), '--version', '1.1.0', '--arch', ARCH, '-o', full]);
  await ok([
    'release',
    'patch',
    path.join(folder.dir, 'v1'),
    path.join(folder.dir, 'v2'),
    '--from',
    '1.0.0',
    '--to',
    '1.1.0',
    '--arch',
    ARCH,
    '-o',
    patch,
  ]);
  await ok([
    'release',
    'manifest',
    '--version',
    '1.1.0',
    '--notes',
    'release B',
    '-o',
    path.join(releaseDir, 'manifest.json'),
    full,
    patch,
  ]);
  publicKey = (await ok(['--json', 'release', 'keygen', '-o', path.join(folder.dir, 'signing')])).json()
    .public_key as string;
  await ok(['release', 'sign', path.join(releaseDir, 'manifest.json'), '-k', path.join(folder.dir, 'signing.key')]);
  goodBundle = path.join(folder.dir, 'out', 'release-1.1.0.nuwax.tar');
  await ok(['release', 'bundle', '--manifest', releaseDir, '-o', goodBundle]);
});

after(() => folder.cleanup());

describe('nuwax release bundle and nuwax import (issue 7: offline boxes)', () => {
  test('round trip: bundle → import with the server down → status shows it staged; a later upgrade finds the packages in the cache, server down or up', async (context) => {
    const entries = await readEntries(goodBundle);
    assert.deepEqual(
      entries.slice(0, 3).map((entry) => entry.header.name),
      ['nuwax-bundle.json', 'manifest.json', 'manifest.json.sig'],
    );
    assert.equal(entries.filter(isPackage).length, 2, 'the full package and the patch');
    assert.deepEqual(
      entries[1]!.body,
      readFileSync(path.join(releaseDir, 'manifest.json')),
      'the manifest bytes as signed',
    );

    const home = box('round-trip');
    const started = Date.now();
    const run = await runCli(['--home', home, '--json', 'import', goodBundle, '--yes']);
    const ms = Date.now() - started;
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(
      { status: run.json().status, version: run.json().version, strategy: run.json().strategy },
      { status: 'staged', version: '1.1.0', strategy: 'patch' },
    );
    const copied = run
      .lines()
      .find((event) => event.type === 'log' && /into the download cache/.test(String(event.message)));
    assert.match(String(copied?.message), /copied 2 package\(s\).*the manifest signature verified/);
    assert.deepEqual(
      await staged(home).then((value) => value && { version: value.version, strategy: value.strategy }),
      { version: '1.1.0', strategy: 'patch' },
    );
    const cached = cacheFiles(home).sort();
    assert.equal(cached.length, 2, `the patch and the full package to fall back on: ${cached}`);
    assert.ok(
      cached.every((name) => /^[0-9a-f]{64}\.tar\.gz$/.test(name)),
      `named as the downloader names them: ${cached}`,
    );
    const size = readFileSync(goodBundle).length;
    context.diagnostic(
      `import of a ${(size / 1048576).toFixed(1)} MiB bundle (verify, copy, stage) took ${ms} ms through the CLI; ${String(copied?.message)}`,
    );

    // Server down: the upgrade falls back on the staged manifest and reuses the imported file.
    const offline = await runCli(['--home', home, '--json', 'upgrade', '--download-only']);
    assert.equal(offline.code, 0, offline.stdout + offline.stderr);
    assert.equal(offline.json().status, 'staged');
    assert.deepEqual(cacheFiles(home).sort(), cached, 'nothing downloaded, no partial file');

    // Server up with the same release: the manifest is fetched, the package is not.
    const server = await new ReleaseServer().start();
    try {
      for (const name of readdirSync(releaseDir)) server.set(`/${name}`, readFileSync(path.join(releaseDir, name)));
      const config = path.join(home, 'config.toml');
      writeFileSync(config, readFileSync(config, 'utf8').replace(deadUrl, `${server.url}/manifest.json`));
      const online = await runCli(['--home', home, '--json', 'upgrade', '--download-only']);
      assert.equal(online.code, 0, online.stdout + online.stderr);
      assert.equal(online.json().status, 'staged');
      assert.deepEqual(server.requests.map((request) => request.url).sort(), ['/manifest.json', '/manifest.json.sig']);
    } finally {
      await server.stop();
    }
  });

  test('an air-gapped box with no [server] at all: import, then upgrade uses the staged release', async () => {
    const home = box('no-server');
    writeFileSync(
      path.join(home, 'config.toml'),
      `[versions]\ndocker_service = "1.0.0"\n[security]\npublic_keys = ["${publicKey}"]\n`,
    );
    await ok(['--home', home, '--json', 'import', goodBundle, '--yes']);
    const cached = cacheFiles(home).sort();
    const upgrade = await runCli(['--home', home, '--json', 'upgrade', '--download-only']);
    assert.equal(upgrade.code, 0, upgrade.stdout + upgrade.stderr);
    assert.deepEqual([upgrade.json().status, upgrade.json().version], ['staged', '1.1.0']);
    assert.deepEqual(cacheFiles(home).sort(), cached);
    // Without a staged release, no server is still a configuration error.
    const bare = box('no-server-nothing-staged');
    writeFileSync(path.join(bare, 'config.toml'), '[versions]\ndocker_service = "1.0.0"\n');
    const refused = await runCli(['--home', bare, '--json', 'upgrade', '--download-only']);
    assert.equal(refused.code, 1);
    assert.equal((refused.json().error as { code: string }).code, 'E_CONFIG');
  });

  test('a box already on the bundled version: up_to_date, nothing copied into the cache', async () => {
    const home = box('up-to-date');
    writeFileSync(
      path.join(home, 'config.toml'),
      readFileSync(path.join(home, 'config.toml'), 'utf8').replace('"1.0.0"', '"1.1.0"'),
    );
    const run = await runCli(['--home', home, '--json', 'import', goodBundle, '--yes']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.json().status, 'up_to_date');
    assert.deepEqual(cacheFiles(home), []);
    assert.equal(await staged(home), null);
  });

  test('a changed byte in the manifest: E_SIGNATURE, nothing staged, nothing cached', async () => {
    const bundle = await altered('tampered-manifest', (entries) =>
      entries.map((entry) =>
        entry.header.name === 'manifest.json'
          ? { ...entry, body: Buffer.from(entry.body.toString('utf8').replace('release B', 'release X')) }
          : entry,
      ),
    );
    await assertRefused(bundle, 'E_SIGNATURE', 'tampered-manifest');
  });

  test('no signature while the box has public keys: E_SIGNATURE', async () => {
    const bundle = await altered('unsigned', (entries) =>
      entries.filter((entry) => entry.header.name !== 'manifest.json.sig'),
    );
    await assertRefused(bundle, 'E_SIGNATURE', 'unsigned');
  });

  test('a changed byte in a package: E_HASH_MISMATCH naming it, nothing staged, no partial file left', async () => {
    let named = '';
    const bundle = await altered('tampered-package', (entries) =>
      entries.map((entry) => {
        if (!isPackage(entry) || named) return entry;
        named = entry.header.name;
        const body = Buffer.from(entry.body);
        body[body.length >> 1] ^= 0xff;
        return { ...entry, body };
      }),
    );
    await assertRefused(bundle, 'E_HASH_MISMATCH', 'tampered-package');
    const run = await runCli(['--home', box('tampered-package-message'), 'import', bundle, '--yes']);
    assert.ok(run.stderr.includes(named), run.stderr);
  });

  for (const [label, change, code, message] of [
    ['a "../" path', inserted(plainFile('../escaped.txt', 'x')), 'E_UNSAFE_PATH', null],
    ['an absolute path', inserted(plainFile('/tmp/nuwax-bundle-absolute.txt', 'x')), 'E_UNSAFE_PATH', null],
    [
      'a symlink',
      inserted({
        header: {
          name: 'packages/link',
          type: 'symlink',
          linkname: '/etc/passwd',
          mode: 0o777,
          mtime: new Date(),
        } as tarStream.Header,
        body: Buffer.alloc(0),
      }),
      'E_UNSAFE_PATH',
      null,
    ],
    ['an unexpected file', inserted(plainFile('extra.txt', 'x')), 'E_BUNDLE', null],
    // A malformed index names its field (not a TypeError reported as E_ARCHIVE), before any package is read.
    [
      'an index that is not an object',
      (entries: RawEntry[]) => [{ ...entries[0]!, body: Buffer.from('null') }, ...entries.slice(1)],
      'E_BUNDLE',
      /nuwax-bundle\.json is null, not a JSON object/,
    ],
    [
      'a null package in the index',
      withIndex((index) => {
        index.packages[0] = null;
      }),
      'E_BUNDLE',
      /malformed: packages\.0: .*expected object, received null/,
    ],
    [
      'packages that are not a list',
      withIndex((index) => {
        (index as Record<string, unknown>).packages = {};
      }),
      'E_BUNDLE',
      /malformed: packages: .*expected array/,
    ],
    [
      'roles that are not a list',
      withIndex((index) => {
        index.packages[0]!.roles = 'full';
      }),
      'E_BUNDLE',
      /malformed: packages\.0\.roles: .*expected array, received string/,
    ],
    // Bad roles once made the hash-mismatch message itself throw: the index is refused first now.
    [
      'roles that are not a list, on a tampered package',
      (entries: RawEntry[]) =>
        tamperedPackage(
          withIndex((index) => {
            index.packages[0]!.roles = {};
          })(entries),
        ),
      'E_BUNDLE',
      /malformed: packages\.0\.roles: .*expected array, received object/,
    ],
    [
      'a size that is not a number',
      withIndex((index) => {
        index.packages[0]!.size = '4096';
      }),
      'E_BUNDLE',
      /malformed: packages\.0\.size: .*expected number, received string/,
    ],
    [
      "a sha256 that is not its name's",
      withIndex((index) => {
        index.packages[0]!.sha256 = index.packages[1]!.sha256;
      }),
      'E_BUNDLE',
      /packages\.0\.name: expected the name to start with the package's sha256/,
    ],
    [
      'the same package listed twice',
      withIndex((index) => {
        index.packages.push(index.packages[0]!);
      }),
      'E_BUNDLE',
      /malformed: packages\.2\.name: expected each package once; this name is also packages\.0's/,
    ],
    [
      'no version in the index',
      withIndex((index) => {
        delete index.version;
      }),
      'E_BUNDLE',
      /malformed: version: /,
    ],
  ] as const) {
    test(`${label} in the bundle is refused (${code}) and nothing is written anywhere`, async () => {
      const bundle = await altered(`hostile-${label.replace(/\W/g, '')}`, change);
      const run = await assertRefused(bundle, code, `hostile-${label.replace(/\W/g, '')}`);
      if (message) assert.match(run.stderr, message);
      assert.equal(existsSync('/tmp/nuwax-bundle-absolute.txt'), false);
      assert.equal(existsSync(path.join(folder.dir, 'boxes', 'escaped.txt')), false);
    });
  }

  test('a package placed before the manifest is refused (E_BUNDLE)', async () => {
    const bundle = await altered('out-of-order', (entries) => [
      entries[0]!,
      ...entries.filter(isPackage),
      ...entries.slice(1).filter((entry) => !isPackage(entry)),
    ]);
    await assertRefused(bundle, 'E_BUNDLE', 'out-of-order');
  });

  test('a truncated bundle is refused (E_ARCHIVE): cut inside a package, or cut after a whole entry', async () => {
    const bytes = readFileSync(goodBundle);
    const cut = path.join(folder.dir, 'cut.tar');
    writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
    await assertRefused(cut, 'E_ARCHIVE', 'cut-inside');
    const entries = await readEntries(goodBundle);
    const lastPackage = entries.at(-1)!;
    // The tar up to the end of the next-to-last entry: no end-of-archive marker, one package short.
    const boundary = bytes.length - 1024 - 512 - Math.ceil(lastPackage.body.length / 512) * 512;
    const cutAtBoundary = path.join(folder.dir, 'cut-boundary.tar');
    writeFileSync(cutAtBoundary, bytes.subarray(0, boundary));
    await assertRefused(cutAtBoundary, 'E_ARCHIVE', 'cut-boundary');
  });

  test('a file that is not a bundle is refused (E_BUNDLE)', async () => {
    await assertRefused(path.join(releaseDir, 'full-1.1.0.tar.gz'), 'E_BUNDLE', 'not-a-bundle');
  });

  test('release bundle refuses a package that does not match the manifest and writes no file', async () => {
    const copy = path.join(folder.dir, 'bad-release');
    mkdirSync(copy);
    for (const name of readdirSync(releaseDir))
      writeFileSync(path.join(copy, name), readFileSync(path.join(releaseDir, name)));
    const patch = readFileSync(path.join(copy, 'patch-1.1.0.tar.gz'));
    patch[patch.length >> 1] ^= 0xff;
    writeFileSync(path.join(copy, 'patch-1.1.0.tar.gz'), patch);
    const outDir = path.join(folder.dir, 'bad-out');
    const run = await runCli([
      'release',
      'bundle',
      '--manifest',
      path.join(copy, 'manifest.json'),
      '-o',
      path.join(outDir, 'b.tar'),
    ]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /E_HASH_MISMATCH: .*patch-1\.1\.0\.tar\.gz/);
    assert.deepEqual(existsSync(outDir) ? readdirSync(outDir) : [], [], 'no bundle and no temp file');
  });

  test('release bundle --arch keeps what a box of that arch uses (SPEC 6: platforms.<arch>, else packages.full; patch.<arch>)', async () => {
    const other = ARCH === 'x86_64' ? 'aarch64' : 'x86_64';
    const output = path.join(folder.dir, 'other-arch.tar');
    const run = await runCli(['--json', 'release', 'bundle', '--manifest', releaseDir, '--arch', other, '-o', output]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    // The manifest has no platforms.<other> nor patch.<other>: only the arch-less packages.full serves it.
    assert.deepEqual(
      (run.json().packages as Array<{ roles: string[] }>).map((item) => item.roles),
      [[`full ${other}`]],
    );
    assert.equal((await readEntries(output)).filter(isPackage).length, 1);
  });

  test('a bundle without the package this box needs: E_NO_PACKAGE, nothing staged', async () => {
    const bundle = await altered('no-package-for-this-box', (entries) => {
      const index = JSON.parse(entries[0]!.body.toString('utf8')) as { packages: unknown[] };
      index.packages = [];
      return [
        { ...entries[0]!, body: Buffer.from(JSON.stringify(index)) },
        ...entries.slice(1).filter((entry) => !isPackage(entry)),
      ];
    });
    await assertRefused(bundle, 'E_NO_PACKAGE', 'no-package');
  });

  test('an import removes the temp files an interrupted import left in the cache, and only those', async () => {
    const home = box('stale-temporary');
    const downloads = path.join(home, 'cache', 'downloads');
    mkdirSync(downloads, { recursive: true });
    const stale = `.${randomBytes(32).toString('hex')}.import.tmp`;
    writeFileSync(path.join(downloads, stale), randomBytes(64 * 1024));
    writeFileSync(path.join(downloads, 'notes.import.tmp'), 'not a name import writes');
    await assertImported(home, goodBundle, 2);
    assert.equal(existsSync(path.join(downloads, stale)), false);
    assert.ok(existsSync(path.join(downloads, 'notes.import.tmp')), 'a file of another name is not ours to remove');
  });

  test('an import killed with SIGKILL mid-copy leaves a temp file; the next import removes it and succeeds', async () => {
    const home = box('killed-mid-copy');
    const left = await killImportMidCopy(home);
    // The full package comes first in the bundle, so it is the one being copied.
    const full = (
      JSON.parse((await readEntries(goodBundle))[0]!.body.toString('utf8')) as {
        packages: Array<{ sha256: string; roles: string[] }>;
      }
    ).packages.find((item) => item.roles.includes(`full ${ARCH}`))!;
    const temporary = `.${full.sha256}.import.tmp`;
    assert.ok(left.includes(temporary), `the full package's temp copy is left behind: ${left}`);
    assert.ok(statSync(path.join(home, 'cache', 'downloads', temporary)).size > 0);
    assert.equal(await staged(home), null);
    // Importing the same bundle again would write (and rename) the same temp name anyway: the next
    // bundle here carries only the patch, so only the sweep can remove the full package's copy.
    const patchOnly = await altered('patch-only', (entries) =>
      withIndex((index) => {
        index.packages = index.packages.filter((item) => item?.sha256 !== full.sha256);
      })(entries).filter((entry) => !entry.header.name.startsWith(`packages/${full.sha256}-`)),
    );
    await assertImported(home, patchOnly, 1);
  });
});
