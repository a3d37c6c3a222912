import { type ErrorCode, ErrorCodes, NuwaxError } from '../errors/index.js';
import type { Manifest, ManifestArch, PackageRef, PatchRef } from '../manifest/schema.js';
import { compareVersions, parseVersion, sameBase } from '../versions/index.js';
import type { ChosenPackage, StrategyDecision, StrategyInput, UnusablePart } from './types.js';

export type { ChosenPackage, StrategyDecision, StrategyInput, UnusablePart } from './types.js';

/**
 * SPEC 6: the pure full/patch/none decision. No I/O: every fact is an input, so the whole rule is
 * tested by a table of rows.
 */
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

/** The size the manifest gives for the full package of an arch: what a patch saves is measured against it. */
export function fullPackageSize(manifest: Manifest, arch: ManifestArch): number | null {
  return (manifest.platforms?.[arch] ?? manifest.packages?.full)?.size ?? null;
}

const UNVERIFIED_PATCH = 'hash: none known ("external" or absent) and security.allow_unverified is false';

/** Why an entry cannot be used; a patch without a known hash is optional, so it only falls back to full. */
function reasonsAgainst(ref: PackageRef, isPatch: boolean, allowUnverified: boolean): string[] {
  const reasons = ref.problems.map((problem) => `${problem.field}: ${problem.message}`);
  if (isPatch && ref.hash.algorithm === 'external' && !allowUnverified) reasons.push(UNVERIFIED_PATCH);
  return reasons;
}

function unusableParts(manifest: Manifest, allowUnverified: boolean): UnusablePart[] {
  const parts: Array<[string, PackageRef | undefined, boolean]> = [
    ['packages.full', manifest.packages?.full, false],
    ['platforms.x86_64', manifest.platforms?.x86_64, false],
    ['platforms.aarch64', manifest.platforms?.aarch64, false],
    ['patch.x86_64', manifest.patch?.x86_64, true],
    ['patch.aarch64', manifest.patch?.aarch64, true],
  ];
  return parts.flatMap(([part, ref, isPatch]) => {
    const reasons = ref ? reasonsAgainst(ref, isPatch, allowUnverified) : [];
    return reasons.length > 0 ? [{ part, reasons }] : [];
  });
}

/** The package that would be installed: any problem with it refuses the release. */
function choose(
  ref: PackageRef,
  part: string,
  what: string,
  allowUnverified: boolean,
  warnings: string[],
): ChosenPackage {
  const problems = reasonsAgainst(ref, false, allowUnverified);
  if (problems.length > 0) {
    throw new NuwaxError(
      ErrorCodes.E_MANIFEST,
      `The ${what} cannot be installed: ${problems.map((problem) => `${part}.${problem}`).join('; ')}`,
      { details: { part, reasons: problems } },
    );
  }
  if (ref.hash.algorithm !== 'sha256') {
    if (!allowUnverified) {
      throw new NuwaxError(
        ErrorCodes.E_UNVERIFIED,
        `The ${what} (${part}) has no known hash ("external" or none); ` +
          'refusing it unless security.allow_unverified is true',
        { details: { part, url: ref.url } },
      );
    }
    warnings.push(
      `${part} (${ref.url}) has no SHA-256: it is installed unverified because security.allow_unverified is true`,
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

function refuse(code: ErrorCode, message: string): never {
  throw new NuwaxError(code, message);
}

/** SPEC 6, step 1: what refuses the release whatever the box has installed. */
function checkRelease(input: StrategyInput): ManifestArch {
  const { manifest } = input;
  const arch = mapArch(input.hostArch);
  if (!arch) {
    refuse(
      ErrorCodes.E_UNSUPPORTED_ARCH,
      `This host's architecture "${input.hostArch}" is not supported (x86_64 and aarch64 are)`,
    );
  }
  if (!parseVersion(manifest.version)) refuse(ErrorCodes.E_MANIFEST, `version: "${manifest.version}" is not a version`);
  if (manifest.expires && Date.parse(manifest.expires) <= input.now.getTime()) {
    refuse(
      ErrorCodes.E_MANIFEST_EXPIRED,
      `The manifest expired at ${manifest.expires}; refusing a stale or replayed release`,
    );
  }
  if (manifest.min_client && compareVersions(manifest.min_client, input.clientVersion) > 0) {
    refuse(
      ErrorCodes.E_CLIENT_TOO_OLD,
      `This release needs nuwax ${manifest.min_client} or newer; this is ${input.clientVersion}`,
    );
  }
  if (input.currentVersion !== null && !parseVersion(input.currentVersion)) {
    refuse(
      ErrorCodes.E_VERSION,
      `The installed version "${input.currentVersion}" is not a version; fix [versions] docker_service in config.toml`,
    );
  }
  return arch;
}

export function decideStrategy(input: StrategyInput): StrategyDecision {
  const { manifest } = input;
  const offered = manifest.version;
  const arch = checkRelease(input);
  const allowUnverified = input.allowUnverified ?? false;
  const facts = { arch, offered, warnings: [] as string[], unusable: unusableParts(manifest, allowUnverified) };
  const current = input.currentVersion;
  const order = current === null ? 1 : compareVersions(offered, current);

  // 2. never a lower version unless asked.
  if (order < 0 && !input.allowDowngrade) {
    return { ...facts, strategy: 'none', reason: `The offered ${offered} is lower than the installed ${current}` };
  }
  const full = (reason: string): StrategyDecision => {
    const platform = manifest.platforms?.[arch];
    const ref = platform ?? manifest.packages?.full;
    if (!ref) refuse(ErrorCodes.E_NO_PACKAGE, `The manifest for ${offered} has no full package for ${arch}`);
    const part = platform ? `platforms.${arch}` : 'packages.full';
    const chosen = choose(ref, part, `full package for ${arch}`, allowUnverified, facts.warnings);
    return { ...facts, strategy: 'full', reason, package: chosen };
  };
  // 3. forced, or nothing deployed (first install or repair).
  if (input.forceFull) return full('A full package was asked for (--force-full)');
  if (!input.composeFileExists) return full('No docker-compose.yml is deployed: first install or repair');
  // 4. same version.
  if (order === 0) return { ...facts, strategy: 'none', reason: `${offered} is already installed` };
  // 5. a patch for this arch that applies to the installed version, unless that entry cannot be used.
  const patch = manifest.patch?.[arch];
  if (patch && current !== null && patchApplies(patch, current, offered)) {
    const against = reasonsAgainst(patch, true, allowUnverified);
    if (against.length > 0) {
      return full(`The patch from ${current} for ${arch} cannot be used (${against.join('; ')}): full package`);
    }
    return {
      ...facts,
      strategy: 'patch',
      reason: `A patch from ${current} to ${offered} exists for ${arch}`,
      package: choose(patch, `patch.${arch}`, `patch for ${arch}`, allowUnverified, facts.warnings),
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
