import type { Manifest, ManifestArch, PatchOperations } from '../manifest/schema.js';

/** The strategy's inputs and decision, apart from the rule so that rollout.ts can type against them. */
export interface StrategyInput {
  currentVersion: string | null;
  /** Node's process.arch. */
  hostArch: string;
  manifest: Manifest;
  forceFull: boolean;
  composeFileExists: boolean;
  clientVersion: string;
  allowDowngrade?: boolean;
  allowUnverified?: boolean;
  now: Date;
}

export interface ChosenPackage {
  url: string;
  mirrors: string[];
  sha256: string | null;
  size: number | null;
}

/** A manifest entry that cannot be used (a placeholder hash, no URL), by its place in the manifest. */
export interface UnusablePart {
  part: string;
  reasons: string[];
}

interface DecisionFacts {
  reason: string;
  arch: ManifestArch;
  offered: string;
  /** What the operator should know about what would be installed (an unverified package). */
  warnings: string[];
  /** Every entry of the manifest that cannot be used, and why; the rest of the release still counts. */
  unusable: UnusablePart[];
}

export type StrategyDecision =
  | (DecisionFacts & { strategy: 'none' })
  | (DecisionFacts & { strategy: 'full'; package: ChosenPackage })
  | (DecisionFacts & {
      strategy: 'patch';
      package: ChosenPackage;
      operations: PatchOperations;
      from: string[] | null;
    });
