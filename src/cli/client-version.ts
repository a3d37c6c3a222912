import { readFileSync } from 'node:fs';

/** Our own version (SPEC 4 `min_client`), read from package.json two folders above dist/src/cli. */
export const CLIENT_VERSION: string = (() => {
  try {
    const text = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version: string }).version;
  } catch (error) {
    // Run from a copy without package.json beside dist/: no version to compare with min_client.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return '0.0.0';
  }
})();
