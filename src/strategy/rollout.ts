import { createHash } from 'node:crypto';
import type { StrategyDecision } from './types.js';

/**
 * Staged rollouts: a release reaches a share of the fleet first. Pure, like the rest of strategy:
 * the client id comes in as a fact, so a table of ids and percents tests the whole rule.
 */
export interface Rollout {
  percent: number;
  /** A new salt re-draws which boxes go first; without one the offered version is the salt. */
  salt?: string | undefined;
}

export interface RolloutStatus {
  percent: number;
  salt: string;
  /** This box's place in [0, 100): it takes the release when the bucket is below the percent. */
  bucket: number;
  offered: boolean;
}

/**
 * A stable bucket in [0, 100) with two decimals: the first 8 bytes of sha256(salt:clientId), mod
 * 10000, over 100. Raising the percent keeps every box already below it: no box is ever dropped.
 */
export function rolloutBucket(clientId: string, salt: string): number {
  const digest = createHash('sha256').update(`${salt}:${clientId}`).digest();
  return Number(digest.readBigUInt64BE(0) % 10000n) / 100;
}

export function rolloutStatus(rollout: Rollout | undefined, clientId: string, version: string): RolloutStatus | null {
  if (!rollout) return null;
  const salt = rollout.salt ?? version;
  const bucket = rolloutBucket(clientId, salt);
  return { percent: rollout.percent, salt, bucket, offered: bucket < rollout.percent };
}

export function rolloutReason(percent: number): string {
  return `not offered to this box yet (rollout ${percent} %)`;
}

/** A release this box is not yet offered becomes `none`, unless the operator asks to ignore the rollout. */
export function holdBack(decision: StrategyDecision, status: RolloutStatus | null, ignore: boolean): StrategyDecision {
  if (decision.strategy === 'none' || status === null || status.offered || ignore) return decision;
  // Nothing would be installed, so nothing to warn about; what cannot be used still can't.
  const { arch, offered, unusable } = decision;
  return { strategy: 'none', arch, offered, reason: rolloutReason(status.percent), warnings: [], unusable };
}
