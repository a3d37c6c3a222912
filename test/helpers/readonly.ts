import { execFileSync } from 'node:child_process';

/**
 * Makes `file` immutable (chattr +i: even root cannot write, rename over or remove it), the way a
 * read-only config.toml looks on a box. Returns false where chattr is not supported (not root, tmpfs).
 */
export function makeImmutable(file: string): boolean {
  try {
    execFileSync('chattr', ['+i', file], { stdio: 'ignore' });
  } catch {
    // Not supported here: the caller skips with its reason.
    return false;
  }
  return execFileSync('lsattr', ['-d', file], { encoding: 'utf8' }).split(' ')[0]!.includes('i');
}

export function makeMutable(file: string): void {
  execFileSync('chattr', ['-i', file], { stdio: 'ignore' });
}
