/** Messages between a download and its hashing thread (hash-worker.ts), in order on one port. */
export type WorkerRequest =
  | { type: 'prepare'; offset: number }
  | { type: 'block'; slot: number; length: number }
  | { type: 'digest' }
  | { type: 'sync' }
  | { type: 'close' };

export type WorkerReply =
  | { type: 'prepared'; end: number }
  | { type: 'written'; slot: number; end: number }
  | { type: 'digest'; hex: string; end: number }
  | { type: 'synced'; end: number }
  | { type: 'closed'; end: number }
  | { type: 'error'; code: string; message: string; end: number };
