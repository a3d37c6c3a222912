import { createHash } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A tree spec: a path maps to file content, `{ content, mode }`, `{ link }` or `{ dir: true }`. */
export type TreeSpec = Record<
  string,
  string | { content: string; mode?: number } | { link: string } | { dir: true; mode?: number }
>;

export function writeTree(root: string, spec: TreeSpec): void {
  mkdirSync(root, { recursive: true });
  for (const [relative, value] of Object.entries(spec)) {
    const target = path.join(root, relative);
    mkdirSync(path.dirname(target), { recursive: true });
    if (typeof value === 'string') writeFileSync(target, value);
    else if ('link' in value) symlinkSync(value.link, target);
    else if ('dir' in value) mkdirSync(target, { recursive: true, ...(value.mode ? { mode: value.mode } : {}) });
    else writeFileSync(target, value.content, { mode: value.mode ?? 0o644 });
  }
}

/**
 * A recursive listing with kinds, modes, content hashes and symlink targets: two folders are
 * equal for the tests when their snapshots are. Written apart from src/ on purpose.
 */
export function snapshot(root: string): string[] {
  const lines: string[] = [];
  const walk = (directory: string, prefix: string): void => {
    for (const name of readdirSync(directory).sort()) {
      const full = path.join(directory, name);
      const relative = prefix ? `${prefix}/${name}` : name;
      const info = lstatSync(full);
      const mode = (info.mode & 0o7777).toString(8);
      if (info.isSymbolicLink()) lines.push(`${relative} link ${readlinkSync(full)}`);
      else if (info.isDirectory()) {
        lines.push(`${relative}/ dir ${mode}`);
        walk(full, relative);
      } else
        lines.push(
          `${relative} file ${mode} ${createHash('sha256').update(readFileSync(full)).digest('hex').slice(0, 16)}`,
        );
    }
  };
  try {
    lstatSync(root);
  } catch {
    return ['<absent>'];
  }
  walk(root, '');
  return lines;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A temp folder per test, removed by the returned cleanup. */
export function temporaryFolder(label: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), `nuwax-${label}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const PROTECTED = [
  'data',
  'upload',
  'project_workspace',
  'project_zips',
  'project_nginx',
  'project_init',
  'uv_cache',
];
