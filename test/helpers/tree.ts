import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';

/** A recursive snapshot of a tree: type, mode, content hash or link target, for exact comparisons. */
export async function snapshot(root: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  const walk = async (directory: string, prefix: string): Promise<void> => {
    let names: string[];
    try {
      names = (await readdir(directory)).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const full = path.join(directory, name);
      const relative = prefix ? `${prefix}/${name}` : name;
      const info = await lstat(full);
      const mode = (info.mode & 0o777).toString(8);
      if (info.isSymbolicLink()) result[relative] = `link -> ${await readlink(full)}`;
      else if (info.isDirectory()) {
        result[relative] = `dir ${mode}`;
        await walk(full, relative);
      } else
        result[relative] = `file ${mode} ${createHash('sha256')
          .update(await readFile(full))
          .digest('hex')
          .slice(0, 16)}`;
    }
  };
  await walk(root, '');
  return result;
}
