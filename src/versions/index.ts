// The two functions, not semver's index: the index loads every range and comparator helper, ~6 MiB
// of an edge box's memory in every command (scripts/bench/README.md, "Where a command's memory starts").
import type SemVer from 'semver/classes/semver.js';
import compare from 'semver/functions/compare.js';
import parse from 'semver/functions/parse.js';

/**
 * SPEC 3: nuwax's `M.m.p` or `M.m.p.b` (optional leading `v`; `b` is the patch level on base
 * `M.m.p`), or semver with a pre-release. A 4-part version is a semver base plus a patch level,
 * so `0.0.13` equals `0.0.13.0` and sorts below `0.0.13.2`, which sorts below `0.0.14`.
 */
export interface Version {
  raw: string;
  base: SemVer;
  level: number;
}

const FOUR_PART = /^v?(\d+)\.(\d+)\.(\d+)\.(\d+)$/;

export function parseVersion(text: string): Version | null {
  if (typeof text !== 'string') return null;
  const trimmed = text.trim();
  const four = FOUR_PART.exec(trimmed);
  if (four) {
    const base = parse(`${Number(four[1])}.${Number(four[2])}.${Number(four[3])}`);
    return base ? { raw: trimmed, base, level: Number(four[4]) } : null;
  }
  const base = parse(trimmed);
  return base ? { raw: trimmed, base, level: 0 } : null;
}

export function isValidVersion(text: string): boolean {
  return parseVersion(text) !== null;
}

function mustParse(text: string): Version {
  const version = parseVersion(text);
  if (!version) throw new TypeError(`Not a version: "${text}"`);
  return version;
}

export function compareVersions(a: string | Version, b: string | Version): number {
  const left = typeof a === 'string' ? mustParse(a) : a;
  const right = typeof b === 'string' ? mustParse(b) : b;
  return compare(left.base, right.base) || Math.sign(left.level - right.level);
}

/** nuwax's patch rule: same base `M.m.p`, lower patch level. */
export function sameBase(a: Version, b: Version): boolean {
  return compare(a.base, b.base) === 0;
}
