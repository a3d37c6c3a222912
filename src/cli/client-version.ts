import { readFileSync } from 'node:fs';

/** Our own version (SPEC 4 `min_client`), read from package.json two folders above dist/src/cli. */
export const CLIENT_VERSION: string = (() => {
  try {
    const text = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
