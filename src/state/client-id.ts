import { randomUUID } from 'node:crypto';
import type { KeyValueRepository } from './kv.js';

/** Where the nuwax API's client id is kept (registration writes it; the manifest fetch sends it). */
export const SERVER_CLIENT_ID_KEY = 'server:client_id';
const OWN_CLIENT_ID_KEY = 'client_id';

/**
 * This box's identity for staged rollouts: the id the nuwax API gave it, else one generated once and
 * kept, so a static manifest still puts every box in the same bucket run after run.
 */
export function boxClientId(kv: KeyValueRepository): string {
  const registered = kv.get<string>(SERVER_CLIENT_ID_KEY);
  if (registered) return registered;
  const own = kv.get<string>(OWN_CLIENT_ID_KEY);
  if (own) return own;
  const created = randomUUID();
  kv.set(OWN_CLIENT_ID_KEY, created);
  return created;
}
