import { z } from 'zod';
import { checkRelativePath } from '../fsutil/index.js';
import { isValidVersion } from '../versions/index.js';

/**
 * SPEC 4: `sha256:<hex>` or bare hex; nuwax's "external" (or empty, or no hash at all) means unknown.
 * Anything else (nuwax's own example ships "sha256:patch_hash_x86_64") is kept as `invalid`: that
 * package cannot be verified, which refuses it only if it is the one that would be installed.
 */
export type PackageHash =
  | { algorithm: 'sha256'; hex: string }
  | { algorithm: 'external' }
  | { algorithm: 'invalid'; text: string };

/** A reason one package entry cannot be used, named by its field (`hash`, `url`, `operations`). */
export interface PackageProblem {
  field: string;
  message: string;
}

/** nuwax-cli's serde model takes `null` for every `Option` field: null means absent. */
const absent = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === null ? undefined : value), schema);

function readHash(value: string | undefined): PackageHash {
  const text = (value ?? '').trim();
  if (text === '' || text.toLowerCase() === 'external') return { algorithm: 'external' };
  const match = /^(?:sha256:)?([0-9a-fA-F]{64})$/.exec(text);
  return match ? { algorithm: 'sha256', hex: match[1]!.toLowerCase() } : { algorithm: 'invalid', text };
}

/** nuwax-cli's validate(): a URL is http(s) or a path on the server (ours may also be relative to the manifest). */
function urlProblem(url: string): string | null {
  if (url.trim() === '') return 'missing (an empty URL)';
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https')
    return `"${url}" is neither http(s) nor a path on the server`;
  return null;
}

/** nuwax-cli's parser takes a leading `v` or `V`; the version is kept without it, as nuwax-cli prints it. */
const version = z
  .string()
  .transform((value) => value.trim().replace(/^[vV](?=\d)/, ''))
  .refine(isValidVersion, { message: 'expected a version like 1.4.0, v1.0.2, 1.4.0.2 or 1.5.0-rc.1' });

const pathGroup = absent(
  z
    .looseObject({
      files: absent(z.array(z.string()).default([])),
      directories: absent(z.array(z.string()).default([])),
    })
    .default({ files: [], directories: [] }),
);

const rawOperations = absent(
  z.looseObject({ replace: pathGroup, delete: pathGroup }).default({
    replace: { files: [], directories: [] },
    delete: { files: [], directories: [] },
  }),
);

export type PatchOperations = {
  replace: { files: string[]; directories: string[] };
  delete: { files: string[]; directories: string[] };
};

/** Operation paths are relative and stay inside docker/ (SPEC 4); an unsafe one spoils only its patch. */
function checkOperations(raw: z.output<typeof rawOperations>, problems: PackageProblem[]): PatchOperations {
  const clean = (paths: string[], where: string) =>
    paths.flatMap((value) => {
      try {
        return [checkRelativePath(value, 'operation path')];
      } catch (error) {
        problems.push({ field: `operations.${where}`, message: (error as Error).message });
        return [];
      }
    });
  return {
    replace: {
      files: clean(raw.replace.files, 'replace.files'),
      directories: clean(raw.replace.directories, 'replace.directories'),
    },
    delete: {
      files: clean(raw.delete.files, 'delete.files'),
      directories: clean(raw.delete.directories, 'delete.directories'),
    },
  };
}

const packageFields = {
  url: absent(z.string().optional()),
  hash: absent(z.string().optional()),
  signature: absent(z.string().optional()),
  size: absent(z.number().int().nonnegative().optional()),
  mirrors: absent(z.array(z.string().min(1)).default([])),
  notes: absent(z.string().optional()),
};

type RawPackage = z.output<z.ZodObject<typeof packageFields>>;

export interface PackageRef {
  /** Empty when the entry has none (then `problems` says so). */
  url: string;
  hash: PackageHash;
  signature?: string | undefined;
  /** nuwax writes `size: 0` for "unknown"; no real package is empty, so 0 reads as absent. */
  size?: number | undefined;
  mirrors: string[];
  notes?: string | undefined;
  /** Why this entry cannot be used as it stands; empty when it can. */
  problems: PackageProblem[];
}

export interface PatchRef extends PackageRef {
  from?: string[] | undefined;
  operations: PatchOperations;
}

function readPackage(raw: RawPackage, problems: PackageProblem[] = []): PackageRef {
  const url = raw.url ?? '';
  const hash = readHash(raw.hash);
  const badUrl = urlProblem(url);
  if (badUrl) problems.unshift({ field: 'url', message: badUrl });
  if (hash.algorithm === 'invalid')
    problems.push({ field: 'hash', message: `"${hash.text}" is not a SHA-256 ("sha256:" and 64 hex digits)` });
  return {
    ...raw,
    url,
    hash,
    size: raw.size === 0 ? undefined : raw.size,
    problems,
  };
}

const packageRef = z.looseObject(packageFields).transform((raw) => readPackage(raw));

const patchRef = z
  .looseObject({ ...packageFields, from: absent(z.array(version).optional()), operations: rawOperations })
  .transform((raw): PatchRef => {
    const problems: PackageProblem[] = [];
    const operations = checkOperations(raw.operations, problems);
    return { ...readPackage(raw, problems), from: raw.from, operations };
  });

/** nuwax-cli's validate(): `platforms` and `patch`, when present, name at least one arch. */
const arches = <T extends z.ZodType>(item: T, what: string) =>
  absent(
    z
      .looseObject({ x86_64: absent(item.optional()), aarch64: absent(item.optional()) })
      .refine((group) => group.x86_64 !== undefined || group.aarch64 !== undefined, {
        message: `expected at least one of x86_64 and aarch64 in ${what}`,
      })
      .optional(),
  );

export const manifestSchema = z.looseObject({
  version,
  release_date: absent(z.string().optional()),
  release_notes: absent(z.string().optional()),
  packages: absent(
    z.looseObject({ full: absent(packageRef.optional()), patch: absent(packageRef.optional()) }).optional(),
  ),
  platforms: arches(packageRef, 'platforms'),
  patch: arches(patchRef, 'patch'),
  mirrors: absent(z.array(z.string().min(1)).default([])),
  expires: absent(z.iso.datetime({ offset: true }).optional()),
  min_client: absent(version.optional()),
  rollout: absent(
    z.looseObject({ percent: z.number().min(0).max(100), salt: absent(z.string().optional()) }).optional(),
  ),
});

export type Manifest = z.output<typeof manifestSchema>;
export type ManifestArch = 'x86_64' | 'aarch64';
