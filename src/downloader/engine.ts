import { availableParallelism } from 'node:os';
import { DirectSink } from './direct-sink.js';
import { FollowHasher } from './follower.js';
import { InlineHasher } from './hasher.js';
import type { Sink } from './sink.js';

/**
 * Where SHA-256 runs (SPEC 7: in the same pass as the write); internal, chosen by defaultEngine.
 * - 'inline': the main thread receives, hashes and writes.
 * - 'follow': the main thread receives and writes; a thread hashes the file by following it
 *   (follower.ts). On a resume it hashes the prefix on disk while the rest is being fetched.
 * The measurements behind the choice are in scripts/bench/README.md (section "download").
 */
export type Engine = 'inline' | 'follow';

/**
 * A resume follows (the prefix is hashed on the other core while the rest is fetched), and so
 * does any download with more than two cores; on two or fewer a fresh download stays inline, as
 * the thread's own memory outweighs its gain when the other core runs the application.
 */
export function defaultEngine(resumeFrom: number): Engine {
  return resumeFrom > 0 || availableParallelism() > 2 ? 'follow' : 'inline';
}

export function createSink(file: string, engine: Engine): Sink {
  if (engine === 'follow') return new DirectSink(file, (onError) => new FollowHasher(file, onError));
  return new DirectSink(file, () => new InlineHasher(file));
}
