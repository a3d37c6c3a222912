import type { KeyValueRepository } from './kv.js';

const LAST_CHECK_KEY = 'check:last';

export interface CheckRecord {
  at: string;
  /** The server answered with a manifest that verified and parsed. */
  success: boolean;
}

/** Every ask of the release server leaves its time and outcome, for the metrics a fleet watches. */
export function recordCheck(kv: KeyValueRepository, success: boolean, now = new Date()): void {
  kv.set(LAST_CHECK_KEY, { at: now.toISOString(), success } satisfies CheckRecord);
}

export function lastCheck(kv: KeyValueRepository): CheckRecord | undefined {
  return kv.get<CheckRecord>(LAST_CHECK_KEY);
}

/** Awaits a fetch of the manifest and records whether it answered. */
export async function recordingCheck<T>(kv: KeyValueRepository, fetch: Promise<T>): Promise<T> {
  try {
    const answer = await fetch;
    recordCheck(kv, true);
    return answer;
  } catch (error) {
    recordCheck(kv, false);
    throw error;
  }
}
