import type { Manifest, ManifestArch, PackageRef, PatchOperations, PatchRef } from '../manifest/schema.js';
import { compareVersions, parseVersion, sameBase } from '../versions/index.js';

/**
 * SPEC 6: the pure full/patch/none decision. No I/O: every fact is an input, so the whole rule is
 * tested by a table of rows.
 */
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

export type StrategyDecision =
  | { strategy: 'none'; reason: string; arch: ManifestArch; offered: string }
  | { strategy: 'full'; reason: string; arch: ManifestArch; offered: string; package: ChosenPackage }
  | {
      strategy: 'patch';
      reason: string;
      arch: ManifestArch;
      offered: string;
      package: ChosenPackage;
      operations: PatchOperations;
      from: string[] | null;
    };

export type StrategyErrorCode =
  | 'E_MANIFEST'
  | 'E_MANIFEST_EXPIRED'
  | 'E_CLIENT_TOO_OLD'
  | 'E_UNSUPPORTED_ARCH'
  | 'E_NO_PACKAGE'
  | 'E_UNVERIFIED'
  | 'E_VERSION';

export class StrategyError extends Error {
  constructor(
    readonly code: StrategyErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StrategyError';
  }
}

const ARCHES: Record<string, ManifestArch> = {
  x64: 'x86_64',
  x86_64: 'x86_64',
  amd64: 'x86_64',
  arm64: 'aarch64',
  aarch64: 'aarch64',
};

export function mapArch(nodeArch: string): ManifestArch | null {
  return ARCHES[nodeArch] ?? null;
}

function choose(ref: PackageRef, allowUnverified: boolean, what: string): ChosenPackage {
  if (ref.hash.algorithm === 'external' && !allowUnverified) {
    throw new StrategyError(
      'E_UNVERIFIED',
      `The ${what} has no known hash ("external"); refusing it unless security.allow_unverified is true`,
    );
  }
  return {
    url: ref.url,
    mirrors: ref.mirrors,
    sha256: ref.hash.algorithm === 'sha256' ? ref.hash.hex : null,
    size: ref.size ?? null,
  };
}

function patchApplies(patch: PatchRef, current: string, offered: string): boolean {
  const currentVersion = parseVersion(current)!;
  if (patch.from && patch.from.length > 0)
    return patch.from.some((version) => compareVersions(version, currentVersion) === 0);
  const offeredVersion = parseVersion(offered)!;
  return sameBase(currentVersion, offeredVersion) && currentVersion.level < offeredVersion.level;
}

export function decideStrategy(input: StrategyInput): StrategyDecision {
  const { manifest } = input;
  const offered = manifest.version;
  const arch = mapArch(input.hostArch);
  if (!arch)
    throw new StrategyError(
      'E_UNSUPPORTED_ARCH',
      `This host's architecture "${input.hostArch}" is not supported (x86_64 and aarch64 are)`,
    );
  if (!parseVersion(offered)) throw new StrategyError('E_MANIFEST', `version: "${offered}" is not a version`);

  // 1. invalid, expired, or written for a newer client.
  if (manifest.expires && Date.parse(manifest.expires) <= input.now.getTime()) {
    throw new StrategyError(
      'E_MANIFEST_EXPIRED',
      `The manifest expired at ${manifest.expires}; refusing a stale or replayed release`,
    );
  }
  if (manifest.min_client && compareVersions(manifest.min_client, input.clientVersion) > 0) {
    throw new StrategyError(
      'E_CLIENT_TOO_OLD',
      `This release needs nuwax ${manifest.min_client} or newer; this is ${input.clientVersion}`,
    );
  }
  const current = input.currentVersion;
  if (current !== null && !parseVersion(current)) {
    throw new StrategyError(
      'E_VERSION',
      `The installed version "${current}" is not a version; fix [versions] docker_service in config.toml`,
    );
  }
  const order = current === null ? 1 : compareVersions(offered, current);

  // 2. never a lower version unless asked.
  if (order < 0 && !input.allowDowngrade) {
    return { strategy: 'none', arch, offered, reason: `The offered ${offered} is lower than the installed ${current}` };
  }
  const full = (reason: string): StrategyDecision => {
    const ref = manifest.platforms?.[arch] ?? manifest.packages?.full;
    if (!ref) throw new StrategyError('E_NO_PACKAGE', `The manifest for ${offered} has no full package for ${arch}`);
    return {
      strategy: 'full',
      arch,
      offered,
      reason,
      package: choose(ref, input.allowUnverified ?? false, `full package for ${arch}`),
    };
  };
  // 3. forced, or nothing deployed (first install or repair).
  if (input.forceFull) return full('A full package was asked for (--force-full)');
  if (!input.composeFileExists) return full('No docker-compose.yml is deployed: first install or repair');
  // 4. same version.
  if (order === 0) return { strategy: 'none', arch, offered, reason: `${offered} is already installed` };
  // 5. a patch for this arch that applies to the installed version.
  const patch = manifest.patch?.[arch];
  if (patch && current !== null && patchApplies(patch, current, offered)) {
    return {
      strategy: 'patch',
      arch,
      offered,
      reason: `A patch from ${current} to ${offered} exists for ${arch}`,
      package: choose(patch, input.allowUnverified ?? false, `patch for ${arch}`),
      operations: patch.operations,
      from: patch.from ?? null,
    };
  }
  // 6. a full package for this arch.
  return full(
    current === null
      ? `No version is recorded: installing ${offered} in full`
      : `No patch applies to ${current}: full package`,
  );
}

export { holdBack, type Rollout, rolloutBucket, rolloutReason, rolloutStatus, type RolloutStatus } from './rollout.js';
