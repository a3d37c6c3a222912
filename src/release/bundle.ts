/**
 * Offline bundles for air-gapped boxes: one plain tar (the packages are compressed
 * already) holding a release exactly as the server publishes it:
 *   nuwax-bundle.json          format, created, client_min, version and the package list
 *   manifest.json              the manifest's exact bytes (the signature covers them)
 *   manifest.json.sig          when the release is signed
 *   packages/<sha256>-<name>   every package the manifest names for the chosen arches
 * This file holds the format and the writer (`release bundle`); bundle-read.ts the reader (`import`),
 * which accepts exactly these names, in this order, as plain files with bounded sizes.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import tarStream from 'tar-stream';
import { z } from 'zod';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import { createProgressReporter, type ProgressListener } from '../events/index.js';
import { fsyncDirectory, fsyncFile, temporaryPathFor, whenAbsent } from '../fsutil/index.js';
import { isValidVersion, type Manifest, type ManifestArch, type PackageRef, parseManifest } from '../manifest/index.js';

export const BUNDLE_FORMAT = 1;
/** The oldest nuwax that reads format 1. */
const FORMAT_CLIENT_MIN = '0.1.0';
export const INDEX_NAME = 'nuwax-bundle.json';
export const MANIFEST_NAME = 'manifest.json';
export const SIGNATURE_NAME = 'manifest.json.sig';
export const PACKAGE_NAME = /^packages\/([0-9a-f]{64})-[A-Za-z0-9._-]{1,100}$/;
/** Metadata is small; a large entry under one of these names is hostile. The manifest bound is fetch's. */
export const LIMITS: Record<string, number> = {
  [INDEX_NAME]: 1 << 20,
  [MANIFEST_NAME]: 4 << 20,
  [SIGNATURE_NAME]: 4096,
};
const ARCHES: ManifestArch[] = ['x86_64', 'aarch64'];

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');
const version = z.string().refine(isValidVersion, { message: 'expected a version like 1.4.0, 1.4.0.2 or 1.5.0-rc.1' });

const bundledPackageSchema = z
  .object({
    name: z.string().regex(PACKAGE_NAME, 'expected "packages/<sha256>-<file name>"'),
    sha256: sha256Hex,
    size: z.number().int().nonnegative(),
    /** What the manifest uses it for: `full x86_64`, `patch aarch64`, or `full` (arch-less nuwax manifest). */
    roles: z.array(z.string().min(1)).min(1),
  })
  .refine((item) => PACKAGE_NAME.exec(item.name)?.[1] === item.sha256, {
    message: "expected the name to start with the package's sha256",
    path: ['name'],
  });

/** One entry per package: the reader finds a package by its name and keeps it by its sha256. */
function refuseRepeats(packages: Array<{ name: string; sha256: string }>, context: z.RefinementCtx): void {
  for (const field of ['name', 'sha256'] as const) {
    const first = new Map<string, number>();
    packages.forEach((item, position) => {
      const earlier = first.get(item[field]);
      if (earlier === undefined) first.set(item[field], position);
      else
        context.addIssue({
          code: 'custom',
          message: `expected each package once; this ${field} is also packages.${earlier}'s`,
          path: [position, field],
        });
    });
  }
}

/** nuwax-bundle.json, checked whole before a package is read (SPEC 4: an error names the field). */
export const bundleIndexSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  created: z.iso.datetime(),
  client_min: version,
  version,
  packages: z.array(bundledPackageSchema).superRefine(refuseRepeats),
});

export type BundledPackage = z.output<typeof bundledPackageSchema>;
export type BundleIndex = z.output<typeof bundleIndexSchema>;

export function bundleError(message: string, details?: Record<string, unknown>): NuwaxError {
  return new NuwaxError(ErrorCodes.E_BUNDLE, message, details ? { details } : {});
}

/** SPEC 6: a box of `arch` uses platforms.<arch>, else packages.full, and patch.<arch>. */
export function packagesFor(
  manifest: Manifest,
  arches?: ManifestArch[],
): Array<{ ref: PackageRef; sha256: string; roles: string[] }> {
  const chosen = arches ?? ARCHES.filter((arch) => manifest.platforms?.[arch] || manifest.patch?.[arch]);
  const found: Array<{ ref: PackageRef; role: string }> = [];
  if (chosen.length === 0 && manifest.packages?.full) found.push({ ref: manifest.packages.full, role: 'full' });
  for (const arch of chosen) {
    const full = manifest.platforms?.[arch] ?? manifest.packages?.full;
    const patch = manifest.patch?.[arch];
    if (!full && !patch)
      throw new NuwaxError(ErrorCodes.E_NO_PACKAGE, `The manifest for ${manifest.version} has no package for ${arch}`);
    if (full) found.push({ ref: full, role: `full ${arch}` });
    if (patch) found.push({ ref: patch, role: `patch ${arch}` });
  }
  if (found.length === 0)
    throw new NuwaxError(ErrorCodes.E_NO_PACKAGE, `The manifest for ${manifest.version} names no package`);
  const bySha = new Map<string, { ref: PackageRef; sha256: string; roles: string[] }>();
  for (const { ref, role } of found) {
    if (ref.hash.algorithm !== 'sha256') {
      throw new NuwaxError(
        ErrorCodes.E_UNVERIFIED,
        `The ${role} package ${ref.url} has no sha256 ("external"): a bundle carries only packages a box can verify`,
      );
    }
    const known = bySha.get(ref.hash.hex);
    if (known) known.roles.push(role);
    else bySha.set(ref.hash.hex, { ref, sha256: ref.hash.hex, roles: [role] });
  }
  return [...bySha.values()];
}

/** Every sha256 the manifest names, with the size it declares (null: none declared). */
export function declaredHashes(manifest: Manifest): Map<string, number | null> {
  const refs = [
    manifest.packages?.full,
    manifest.packages?.patch,
    ...ARCHES.flatMap((arch) => [manifest.platforms?.[arch], manifest.patch?.[arch]]),
  ];
  const hashes = new Map<string, number | null>();
  for (const ref of refs) if (ref?.hash.algorithm === 'sha256') hashes.set(ref.hash.hex, ref.size ?? null);
  return hashes;
}

function lastSegment(url: string): string {
  const raw = url.split(/[?#]/)[0]!.split('/').pop() ?? '';
  try {
    return decodeURIComponent(raw);
  } catch (error) {
    // A malformed %-escape: the name is used as written.
    if (error instanceof URIError) return raw;
    throw error;
  }
}

function entryNameFor(sha256: string, url: string): string {
  const base = lastSegment(url)
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .slice(-100);
  return `packages/${sha256}-${base || 'package'}`;
}

/** A relative URL names a file beside the manifest; an absolute one is looked for by name there (or in packagesDir). */
function localFileFor(url: string, manifestFile: string, packagesDir: string | undefined): string {
  const resolved = new URL(url, pathToFileURL(manifestFile));
  if (!packagesDir && resolved.protocol === 'file:') return fileURLToPath(resolved);
  return path.join(packagesDir ?? path.dirname(manifestFile), lastSegment(resolved.pathname));
}

async function readBoundedFile(file: string, limit: number, optional: boolean): Promise<Buffer | null> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (error) {
    if (optional && (error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new NuwaxError(ErrorCodes.E_USAGE, `Cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (size > limit)
    throw new NuwaxError(ErrorCodes.E_USAGE, `${file} is ${size} bytes, more than the ${limit} a bundle accepts`);
  return readFile(file);
}

/** Bytes through a bundle, as `verifying` progress (throttled at the source). */
export function byteProgress(
  total: number,
  listener: ProgressListener | undefined,
): { add(count: number): void; finish(): void } {
  const reporter = createProgressReporter('verifying', total, listener);
  let done = 0;
  return {
    add(count) {
      done += count;
      reporter.update(done);
    },
    finish: () => reporter.finish(done),
  };
}

/** Hashes and counts the bytes passing through, in the same pass as the copy (SPEC 7). */
export function hashingStream(onBytes: (count: number) => void): {
  transform: Transform;
  digest(): string;
  size(): number;
} {
  const hash = createHash('sha256');
  let size = 0;
  const transform = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      onBytes(chunk.length);
      callback(null, chunk);
    },
  });
  return { transform, digest: () => hash.digest('hex'), size: () => size };
}

export interface CreateBundleOptions {
  /** The manifest file, or the release folder holding manifest.json (as `release manifest` and `serve` use it). */
  manifest: string;
  output: string;
  /** Default: every arch the manifest has packages for. */
  arches?: ManifestArch[];
  /** Where the package files are, when not beside the manifest. */
  packagesDir?: string;
  now?: Date;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export interface CreatedBundle {
  output: string;
  version: string;
  signed: boolean;
  size: number;
  packages: BundledPackage[];
}

type BundleSource = BundledPackage & { file: string };

/** The package files to bundle, found beside the manifest (or in packagesDir), sizes checked against it. */
async function locatePackages(
  manifest: Manifest,
  manifestFile: string,
  options: CreateBundleOptions,
): Promise<BundleSource[]> {
  const sources: BundleSource[] = [];
  for (const item of packagesFor(manifest, options.arches)) {
    const file = localFileFor(item.ref.url, manifestFile, options.packagesDir);
    const size = await stat(file).then(
      (info) => info.size,
      (error: unknown) => {
        throw new NuwaxError(
          ErrorCodes.E_USAGE,
          `The ${item.roles.join(', ')} package is not at ${file} (--packages names the folder holding it)`,
          { cause: error },
        );
      },
    );
    if (item.ref.size !== undefined && item.ref.size !== size) {
      throw new NuwaxError(
        ErrorCodes.E_SIZE_MISMATCH,
        `${file} is ${size} bytes; the manifest says ${item.ref.size}: refusing to bundle it`,
        { details: { file, expected: item.ref.size, actual: size } },
      );
    }
    sources.push({ file, name: entryNameFor(item.sha256, item.ref.url), sha256: item.sha256, size, roles: item.roles });
  }
  return sources;
}

/**
 * Writes the tar to `temporary`: the metadata, then each package hashed in the same pass as the
 * copy; a package that does not match the manifest's sha256 is refused.
 */
async function writeBundle(
  temporary: string,
  metadata: Array<[string, Buffer]>,
  sources: BundleSource[],
  mtime: Date,
  options: CreateBundleOptions,
): Promise<void> {
  const signal = { signal: options.signal };
  const progress = byteProgress(
    sources.reduce((sum, source) => sum + source.size, 0),
    options.onProgress,
  );
  const pack = tarStream.pack();
  const writing = pipeline(pack, createWriteStream(temporary, { mode: 0o644 }), signal);
  // The file side failing (disk full) must not leave an entry waiting forever.
  const writeFailure = writing.then(() => new Promise<never>(() => undefined));
  writeFailure.catch(() => undefined);
  const header = (name: string, size: number) => ({ name, size, mode: 0o644, mtime, type: 'file' as const });
  try {
    for (const [name, body] of metadata) {
      await Promise.race([
        writeFailure,
        new Promise<void>((resolve, reject) =>
          pack.entry(header(name, body.length), body, (error) => (error ? reject(error) : resolve())),
        ),
      ]);
    }
    for (const source of sources) {
      const hashing = hashingStream(progress.add);
      await Promise.race([
        writeFailure,
        pipeline(
          createReadStream(source.file, { highWaterMark: 1 << 20 }),
          hashing.transform,
          pack.entry(header(source.name, source.size)),
          signal,
        ),
      ]);
      const actual = hashing.digest();
      if (actual !== source.sha256) {
        throw new NuwaxError(
          ErrorCodes.E_HASH_MISMATCH,
          `${source.file} does not match the sha256 the manifest gives the ${source.roles.join(', ')}` +
            ` package: refusing to bundle it`,
          {
            details: { file: source.file, expected: source.sha256, actual },
          },
        );
      }
    }
    pack.finalize();
    await writing;
    progress.finish();
  } catch (error) {
    pack.destroy();
    await writing.catch(() => undefined);
    throw error;
  }
}

/** `nuwax release bundle`: writes the bundle atomically (temp file, fsync, rename); nothing is left on failure. */
export async function createBundle(options: CreateBundleOptions): Promise<CreatedBundle> {
  const manifestFile = (await stat(options.manifest).catch(whenAbsent(null)))?.isDirectory()
    ? path.join(options.manifest, MANIFEST_NAME)
    : options.manifest;
  const bytes = (await readBoundedFile(manifestFile, LIMITS[MANIFEST_NAME]!, false))!;
  const signature = await readBoundedFile(`${manifestFile}.sig`, LIMITS[SIGNATURE_NAME]!, true);
  const manifest = parseManifest(bytes, manifestFile);
  const sources = await locatePackages(manifest, manifestFile, options);
  const now = options.now ?? new Date();
  const index: BundleIndex = {
    format: BUNDLE_FORMAT,
    created: now.toISOString(),
    client_min: FORMAT_CLIENT_MIN,
    version: manifest.version,
    packages: sources.map(({ file: _file, ...item }) => item),
  };
  const metadata: Array<[string, Buffer]> = [
    [INDEX_NAME, Buffer.from(`${JSON.stringify(index, null, 2)}\n`)],
    [MANIFEST_NAME, bytes],
  ];
  if (signature) metadata.push([SIGNATURE_NAME, signature]);
  const output = path.resolve(options.output);
  await mkdir(path.dirname(output), { recursive: true });
  const temporary = temporaryPathFor(output);
  try {
    await writeBundle(temporary, metadata, sources, now, options);
    await fsyncFile(temporary);
    await rename(temporary, output);
  } catch (error) {
    await rm(temporary, { force: true });
    throw toNuwaxError(error);
  }
  await fsyncDirectory(path.dirname(output));
  return {
    output,
    version: manifest.version,
    signed: signature !== null,
    size: (await stat(output)).size,
    packages: index.packages,
  };
}
