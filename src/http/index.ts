import { createRequire } from 'node:module';
import type * as Undici from 'undici';

/**
 * The parts of undici nuwax uses, required from its own files: undici's index also loads fetch,
 * WebSocket, EventSource, the caches and the mocks, which cost an edge box ~8 MiB of resident memory
 * in every command that touches the network (scripts/bench/README.md, "Where a command's memory
 * starts"). test/http/undici.test.ts proves these are the very objects undici's index exports.
 */
const require = createRequire(import.meta.url);

export type { Dispatcher } from 'undici';

export const Agent: typeof Undici.Agent = require('undici/lib/dispatcher/agent.js');
const global: Pick<typeof Undici, 'getGlobalDispatcher'> = require('undici/lib/global.js');
export const getGlobalDispatcher = global.getGlobalDispatcher;
export const interceptors: Pick<typeof Undici.interceptors, 'redirect'> = {
  redirect: require('undici/lib/interceptor/redirect.js'),
};

// undici's index mixes the request API into every dispatcher the same way.
const Dispatcher: { prototype: object } = require('undici/lib/dispatcher/dispatcher.js');
Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js'));

type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  method?: Undici.Dispatcher.HttpMethod;
  dispatcher?: Undici.Dispatcher;
};

/** undici's `request(url, options)`: one request on the given (else the global) dispatcher. */
export function request(url: string | URL, options: RequestOptions = {}): Promise<Undici.Dispatcher.ResponseData> {
  const target = new URL(url);
  const { dispatcher = getGlobalDispatcher(), ...rest } = options;
  return dispatcher.request({
    ...rest,
    origin: target.origin,
    path: `${target.pathname}${target.search}`,
    method: options.method ?? (options.body ? 'PUT' : 'GET'),
  });
}
