import { execFile } from 'node:child_process';
import { readFile, readlink, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { extractArchive } from '../archive/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { exists, fsyncDirectory } from '../fsutil/index.js';

/**
 * The client root (/opt/nuwax-client), as a release archive lays it out: `versions/<version>/`
 * for each installed client, `current` → the one that runs, `bin/nuwax` that follows `current`,
 * and `switch.pending` while a switched-to client has not yet confirmed it starts (the launcher
 * counts the daemon's starts in it and runs the previous client after three).
 */
export interface ClientLayout {
  root: string;
  versionsDir: string;
  current: string;
  pending: string;
}

export const MAX_UNCONFIRMED_STARTS = 3;

export function layoutOf(root: string): ClientLayout {
  return {
    root,
    versionsDir: path.join(root, 'versions'),
    current: path.join(root, 'current'),
    pending: path.join(root, 'switch.pending'),
  };
}

/** The root this client runs from (its folder is `<root>/versions/<version>`), or undefined for a checkout. */
export function runningClientRoot(): string | undefined {
  // dist/src/selfupdate/layout.js → the version folder holding package.json.
  const versionDir = fileURLToPath(new URL('../../../', import.meta.url));
  const parent = path.dirname(path.resolve(versionDir));
  return path.basename(parent) === 'versions' ? path.dirname(parent) : undefined;
}

/** The version `current` points to. */
export async function currentVersion(layout: ClientLayout): Promise<string> {
  return path.basename(await readlink(layout.current));
}

export interface PendingSwitch {
  previous: string;
  starts: number;
}

export async function readPending(layout: ClientLayout): Promise<PendingSwitch | undefined> {
  let text: string;
  try {
    text = await readFile(layout.pending, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const [previous = '', starts = '0'] = text.trim().split(/\s+/);
  return { previous, starts: Number.parseInt(starts, 10) || 0 };
}

export async function writePending(layout: ClientLayout, previous: string): Promise<void> {
  const temporary = `${layout.pending}.tmp`;
  await writeFile(temporary, `${previous} 0\n`);
  await rename(temporary, layout.pending);
  await fsyncDirectory(layout.root);
}

export async function clearPending(layout: ClientLayout): Promise<void> {
  await rm(layout.pending, { force: true });
  await fsyncDirectory(layout.root);
}

/** Points `current` at a version by renaming a new link over it: at any instant it is the old or the new. */
export async function switchCurrent(layout: ClientLayout, version: string): Promise<void> {
  const next = `${layout.current}.next`;
  try {
    await unlink(next);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await symlink(path.join('versions', version), next);
  await rename(next, layout.current);
  await fsyncDirectory(layout.root);
}

/**
 * Extracts a verified client archive beside the installed ones and moves its `versions/<version>`
 * into place; returns that folder. The running client's folder is never touched.
 */
export async function installVersion(
  layout: ClientLayout,
  archive: string,
  version: string,
  signal?: AbortSignal,
): Promise<string> {
  const incoming = path.join(layout.versionsDir, `.incoming-${version}`);
  const target = path.join(layout.versionsDir, version);
  if ((await currentVersion(layout)) === version) {
    throw new NuwaxError(ErrorCodes.E_SELF_UPDATE, `Client ${version} is already the current one`);
  }
  await rm(incoming, { recursive: true, force: true });
  try {
    await extractArchive(archive, incoming, { signal });
    const extracted = path.join(incoming, 'versions', version);
    const manifest = JSON.parse(await readFile(path.join(extracted, 'package.json'), 'utf8')) as { version?: string };
    if (manifest.version !== version || !(await exists(path.join(extracted, 'bin', 'nuwax')))) {
      throw new NuwaxError(
        ErrorCodes.E_SELF_UPDATE,
        `The client archive does not hold client ${version} (versions/${version}/bin/nuwax)`,
        { details: { found: manifest.version } },
      );
    }
    await rm(target, { recursive: true, force: true });
    await rename(extracted, target);
    await fsyncDirectory(layout.versionsDir);
    return target;
  } finally {
    await rm(incoming, { recursive: true, force: true });
  }
}

/** Removes every installed version but the ones to keep (the current and the previous). */
export async function pruneVersions(layout: ClientLayout, keep: string[]): Promise<void> {
  const { readdir } = await import('node:fs/promises');
  for (const name of await readdir(layout.versionsDir)) {
    if (!keep.includes(name)) await rm(path.join(layout.versionsDir, name), { recursive: true, force: true });
  }
}

export interface SelfTestResult {
  ok: boolean;
  reason?: string;
}

function runClient(
  launcher: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(launcher, args, { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The new client's self-test: `--version` must say its version and a read-only `status` against
 * the real home must succeed, each within the bound.
 */
export async function selfTest(
  launcher: string,
  version: string,
  home: string,
  timeoutMs: number,
): Promise<SelfTestResult> {
  const shown = await runClient(launcher, ['--version'], timeoutMs);
  if (shown.code !== 0 || shown.stdout.trim() !== version) {
    const said = shown.stdout.trim() || shown.stderr.trim().split('\n').at(-1) || '(nothing)';
    return { ok: false, reason: `--version exited ${shown.code} and said ${said.slice(0, 200)}` };
  }
  const status = await runClient(launcher, ['--home', home, '--json', 'status'], timeoutMs);
  if (status.code !== 0) {
    const said = status.stderr.trim().split('\n').at(-1) || status.stdout.trim().split('\n').at(-1) || '';
    return { ok: false, reason: `status exited ${status.code}: ${said.slice(0, 200)}` };
  }
  return { ok: true };
}
