import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  archiveName,
  type BuiltPackage,
  buildPackage,
  PACKAGE_DIR,
  type PackageArch,
  REPO_ROOT,
  readVersion,
} from '../../scripts/package.js';

/** CI sets it: the package tests fail instead of skipping when the toolchain or qemu is absent. */
export const PACKAGE_REQUIRED = process.env.NUWAX_REQUIRE_PACKAGE === '1';

export const QEMU = 'qemu-aarch64-static';
/** Where Debian's cross toolchain keeps the aarch64 loader and libc, for qemu-user. */
export const AARCH64_SYSROOT = '/usr/aarch64-linux-gnu';

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Why a package test cannot run here, or undefined when it can. */
export function missingTools(arch: PackageArch): string | undefined {
  const needed = arch === 'aarch64' ? ['tar', 'npm', 'aarch64-linux-gnu-g++', 'make', 'python3', QEMU] : ['tar', 'npm'];
  const missing = needed.filter((command) => !onPath(command));
  if (arch === 'aarch64' && !existsSync(path.join(AARCH64_SYSROOT, 'lib', 'ld-linux-aarch64.so.1'))) {
    missing.push(`${AARCH64_SYSROOT} (libc6-arm64-cross)`);
  }
  if (missing.length === 0) return undefined;
  return `needs ${missing.join(', ')} (apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user-static)`;
}

/** The test skips (or fails under NUWAX_REQUIRE_PACKAGE=1) when the tools are missing. */
export function packageSuite(arch: PackageArch): { skip?: string } {
  const missing = missingTools(arch);
  if (missing && PACKAGE_REQUIRED) throw new Error(`NUWAX_REQUIRE_PACKAGE=1 but the ${arch} package ${missing}`);
  return missing ? { skip: missing } : {};
}

/**
 * The archive of this build, made once per test run: the build stamp is the compiled dist's
 * (npm test rebuilds it), and a lock folder keeps two test files from building it at once.
 */
export async function packageFor(arch: PackageArch, version?: string): Promise<BuiltPackage> {
  const wanted = version ?? (await readVersion());
  await mkdir(PACKAGE_DIR, { recursive: true });
  const stamp = String((await stat(path.join(REPO_ROOT, 'dist', '.tsbuildinfo'))).mtimeMs);
  const lock = path.join(PACKAGE_DIR, `.lock-${arch}-${wanted}`);
  const stampFile = path.join(PACKAGE_DIR, `.stamp-${arch}-${wanted}`);
  const file = path.join(PACKAGE_DIR, archiveName(wanted, arch));
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock older than the slowest build was left by a killed run.
      if (Date.now() - (await stat(lock)).mtimeMs > 20 * 60_000) await rm(lock, { recursive: true, force: true });
      await sleep(500);
    }
  }
  try {
    const previous = existsSync(stampFile) ? await readFile(stampFile, 'utf8') : '';
    if (previous === stamp && existsSync(file)) {
      return { arch, version: wanted, file, size: (await stat(file)).size, addonSeconds: 0 };
    }
    const built = await buildPackage(arch, { version: wanted });
    await writeFile(stampFile, stamp);
    return built;
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

export function extract(archive: string, directory: string): void {
  execFileSync('tar', ['-xzf', archive, '-C', directory]);
}

/** A PATH with the shell tools the launcher needs and no node. */
export async function pathWithoutNode(directory: string): Promise<string> {
  const bin = path.join(directory, 'no-node-bin');
  await mkdir(bin, { recursive: true });
  for (const tool of ['sh', 'readlink', 'dirname']) {
    const found = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
    execFileSync('ln', ['-sf', found, path.join(bin, tool)]);
  }
  return bin;
}
