import { createRequire } from 'node:module';
import type { Dispatcher, getGlobalDispatcher as GetGlobalDispatcher, interceptors } from 'undici';

/**
 * The two pieces of undici a download uses, from their own files: undici's index also loads
 * fetch, WebSocket, the caches and the mocks, memory and start-up time that count in a download's
 * peak (scripts/bench/README.md, "download"). undici 7 has no "exports" map, so these paths are
 * reachable; the global dispatcher is the same object whichever way undici is loaded.
 */
const require = createRequire(import.meta.url);

export const getGlobalDispatcher: typeof GetGlobalDispatcher = (
  require('undici/lib/global.js') as { getGlobalDispatcher: typeof GetGlobalDispatcher }
).getGlobalDispatcher;

export const redirectInterceptor: typeof interceptors.redirect = require('undici/lib/interceptor/redirect.js');

export type { Dispatcher };
