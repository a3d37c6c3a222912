import { createRequire } from 'node:module';
import type { Dispatcher, getGlobalDispatcher as GetGlobalDispatcher, interceptors } from 'undici';

/**
 * The two pieces of undici a download uses, loaded from their own modules: undici's index also
 * loads fetch, WebSocket, the caches and the mocks, ~8 MiB and 0.1-0.25 s before the first byte
 * (scripts/bench/README.md, "download"). undici 7 has no "exports" map, so these paths are its
 * public files; the global dispatcher is the same object whichever way undici is loaded.
 */
const require = createRequire(import.meta.url);

export const getGlobalDispatcher: typeof GetGlobalDispatcher = (
  require('undici/lib/global.js') as { getGlobalDispatcher: typeof GetGlobalDispatcher }
).getGlobalDispatcher;

export const redirectInterceptor: typeof interceptors.redirect = require('undici/lib/interceptor/redirect.js');

export type { Dispatcher };
