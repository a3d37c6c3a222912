import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { type Manifest, manifestSchema, type PackageRef } from './schema.js';

/** Parses the exact bytes of a manifest; an error names the field (SPEC 4). */
export function parseManifest(bytes: Uint8Array | string, source = 'manifest'): Manifest {
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new NuwaxError(ErrorCodes.E_MANIFEST, `The ${source} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  // The nuwax API may wrap the manifest as { code, data: {...} }.
  if (
    raw &&
    typeof raw === 'object' &&
    !('version' in raw) &&
    'data' in raw &&
    (raw as { data: unknown }).data &&
    typeof (raw as { data: unknown }).data === 'object'
  ) {
    raw = (raw as { data: unknown }).data;
  }
  const result = manifestSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map(
      (issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`,
    );
    throw new NuwaxError(ErrorCodes.E_MANIFEST, `The ${source} is malformed: ${lines.join('; ')}`, {
      details: { issues: lines, fields: result.error.issues.map((issue) => issue.path.map(String).join('.')) },
    });
  }
  return result.data;
}

/**
 * Package URLs may be relative to the manifest's URL, and a URL starting with `/` is a path on the
 * server (nuwax-cli's rule); mirrors are base URLs the file name is resolved against. An entry with no
 * usable URL is left as it is: its `problems` already say why.
 */
export function resolvePackageUrls(manifest: Manifest, manifestUrl: string): Manifest {
  const resolve = <T extends PackageRef>(ref: T | undefined): T | undefined => {
    if (!ref || ref.problems.some((problem) => problem.field === 'url')) return ref;
    const url = new URL(ref.url, manifestUrl).toString();
    const name = new URL(url).pathname.split('/').pop() ?? '';
    const mirrors = [
      ...ref.mirrors.map((mirror) => new URL(mirror, manifestUrl).toString()),
      ...manifest.mirrors.map((base) => new URL(name, base.endsWith('/') ? base : `${base}/`).toString()),
    ].filter((mirror) => mirror !== url);
    return { ...ref, url, mirrors: [...new Set(mirrors)] };
  };
  const { packages, platforms, patch } = manifest;
  return {
    ...manifest,
    packages: packages && { ...packages, full: resolve(packages.full), patch: resolve(packages.patch) },
    platforms: platforms && { ...platforms, x86_64: resolve(platforms.x86_64), aarch64: resolve(platforms.aarch64) },
    patch: patch && { ...patch, x86_64: resolve(patch.x86_64), aarch64: resolve(patch.aarch64) },
  };
}
