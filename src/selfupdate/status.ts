import type { Store } from '../state/index.js';

/** kv keys of the client's own update, shared by the updater and `status`. */
export const CLIENT_UPDATE_KEYS = {
  journal: 'client_update:journal',
  failed: 'client_update:failed',
  last: 'client_update:last',
  available: 'client_update:available',
} as const;

export interface LastClientUpdate {
  from: string;
  to: string;
  status: 'success' | 'failed' | 'rolled_back' | 'interrupted';
  reason?: string;
  at: string;
}

export interface ClientUpdateStatus {
  available: { version: string; checked_at: string } | null;
  last: LastClientUpdate | null;
}

/** What `status` shows of the client: an update available, the last client update. */
export function clientUpdateStatus(store: Store): ClientUpdateStatus {
  return {
    available: store.kv.get<{ version: string; checked_at: string }>(CLIENT_UPDATE_KEYS.available) ?? null,
    last: store.kv.get<LastClientUpdate>(CLIENT_UPDATE_KEYS.last) ?? null,
  };
}
