import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { extractArchive } from '../archive/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import type { ProgressListener } from '../events/index.js';
import { checkRelativePath } from '../fsutil/index.js';
import { METADATA_DIR, type PatchInfo, type PatchOperations, type StagedPackage } from './types.js';

function malformed(why: string, cause?: unknown): NuwaxError {
  return new NuwaxError(
    ErrorCodes.E_ARCHIVE,
    `The package's ${METADATA_DIR}/patch.json is malformed: ${why}`,
    cause === undefined ? {} : { cause },
  );
}

function pathList(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((entry) => typeof entry !== 'string'))
    throw malformed(`${where} must be a list of paths`);
  return value.map((entry: string) => checkRelativePath(entry, `${where} path`));
}

function parseOperations(value: unknown): PatchOperations {
  const record = (value ?? {}) as Record<string, Record<string, unknown> | undefined>;
  if (typeof record !== 'object' || Array.isArray(record)) throw malformed('operations must be an object');
  return {
    replace: {
      files: pathList(record.replace?.files, 'replace.files'),
      directories: pathList(record.replace?.directories, 'replace.directories'),
    },
    delete: {
      files: pathList(record.delete?.files, 'delete.files'),
      directories: pathList(record.delete?.directories, 'delete.directories'),
    },
  };
}

/** Parses `.nuwax/patch.json` (written by `release patch`): `{ from, to, operations, base }`. */
export function parsePatchInfo(text: string): PatchInfo {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw malformed((error as Error).message, error);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw malformed('not a JSON object');
  const info: PatchInfo = {};
  if (typeof raw.from === 'string') info.from = raw.from;
  if (typeof raw.to === 'string') info.to = raw.to;
  if (raw.operations !== undefined) info.operations = parseOperations(raw.operations);
  if (raw.base !== undefined) {
    if (raw.base === null || typeof raw.base !== 'object' || Array.isArray(raw.base))
      throw malformed('base must be an object');
    const base: Record<string, string | null> = {};
    for (const [entry, digest] of Object.entries(raw.base as Record<string, unknown>)) {
      if (digest !== null && (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)))
        throw malformed(`base["${entry}"] must be a sha256 in hex or null`);
      base[checkRelativePath(entry, 'base path')] = digest;
    }
    info.base = base;
  }
  return info;
}

/** `.nuwax/patch.json` of an extracted package, or null for a full package. */
export async function readPatchInfo(root: string): Promise<PatchInfo | null> {
  let text: string;
  try {
    text = await readFile(path.join(root, METADATA_DIR, 'patch.json'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return parsePatchInfo(text);
}

/**
 * Extracts a verified package into a fresh staging folder under cache/ (same filesystem as
 * docker/, so the apply is renames), with the hostile-archive rules of src/archive and a leading
 * `docker/` stripped (SPEC 5). `.nuwax/` is metadata, read here and never applied.
 */
export async function stagePackage(
  file: string,
  stagingDir: string,
  options: {
    signal?: AbortSignal;
    onProgress?: ProgressListener;
    maxEntryBytes?: number;
    maxTotalBytes?: number;
    maxRatio?: number;
  } = {},
): Promise<StagedPackage> {
  const root = path.resolve(stagingDir);
  await mkdir(root, { recursive: true });
  // Refuse rather than wipe: a wrong path here must not cost the operator a folder.
  if ((await readdir(root)).length > 0) {
    throw new NuwaxError(ErrorCodes.E_APPLY, `The staging folder ${root} is not empty`, {
      details: { stagingDir: root },
    });
  }
  try {
    const result = await extractArchive(file, root, {
      stripPrefix: 'docker/',
      step: 'staging',
      signal: options.signal,
      onProgress: options.onProgress,
      maxEntryBytes: options.maxEntryBytes,
      maxTotalBytes: options.maxTotalBytes,
      maxRatio: options.maxRatio,
    });
    return { root, files: result.files, bytes: result.bytes, patchInfo: await readPatchInfo(root) };
  } catch (error) {
    // The folder was empty before: a refused or broken package leaves nothing behind.
    await rm(root, { recursive: true, force: true });
    throw error;
  }
}
