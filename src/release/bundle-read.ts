/**
 * Reading an offline bundle (bundle.ts has the format) for `nuwax import`: the entries in order,
 * plain files with known names and bounded sizes only; anything else refuses the bundle rather
 * than being skipped (STYLE: decide per entry, refuse rather than sanitise). The manifest's
 * signature is checked before a package byte is read, and every package is hashed while it is
 * copied into the download cache, exactly as a download is (SPEC 4, 7).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { parseTar, readPlain } from '../archive/index.js';
import type { Config } from '../config/index.js';
import { finalPathFor } from '../downloader/index.js';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import type { ProgressListener } from '../events/index.js';
import { checkRelativePath, fsyncDirectory, fsyncFile } from '../fsutil/index.js';
import {
  compareVersions,
  type FetchedManifest,
  isValidVersion,
  resolvePackageUrls,
  verifyManifestBytes,
} from '../manifest/index.js';
import {
  BUNDLE_FORMAT,
  type BundledPackage,
  type BundleIndex,
  bundleError,
  bundleIndexSchema,
  byteProgress,
  declaredHashes,
  hashingStream,
  INDEX_NAME,
  LIMITS,
  MANIFEST_NAME,
  PACKAGE_NAME,
  SIGNATURE_NAME,
} from './bundle.js';

export interface ReadBundleOptions {
  config: Config;
  clientVersion: string;
  signal?: AbortSignal;
}

export interface BundleHead {
  file: string;
  index: BundleIndex;
  /** The manifest as a fetch hands it over: signature checked, URLs resolved against the bundle. */
  fetched: FetchedManifest;
  signature: Buffer | null;
}

interface BundleEntry {
  name: string;
  size: number;
  /** The entry's bytes; read to the end or not at all (the reader skips an unread body). */
  body: AsyncIterable<Buffer>;
}

/** What the caller does with one package entry; it must read the body to its end. */
type PackageVisitor = (entry: BundleEntry, item: BundledPackage) => Promise<void>;

function readError(error: unknown, file: string): NuwaxError {
  if (error instanceof NuwaxError) return error;
  const message = (error as Error | undefined)?.message ?? String(error);
  if ((error as Error | undefined)?.name === 'AbortError') return toNuwaxError(error);
  return new NuwaxError(ErrorCodes.E_ARCHIVE, `Cannot read the bundle ${path.basename(file)}: ${message}`, {
    cause: error,
    details: { file },
  });
}

/**
 * The bundle's entries in order; any entry that is not a plain file with a safe name is refused.
 * The archive's own reader (bounded extended headers, checksums, end-of-archive marker).
 */
async function* bundleEntries(file: string, signal: AbortSignal | undefined): AsyncGenerator<BundleEntry> {
  let seen = 0;
  try {
    for await (const entry of parseTar(readPlain(file, { signal }))) {
      const { name, type, size } = entry.header;
      checkRelativePath(name, 'bundle entry');
      if (type !== 'file')
        throw new NuwaxError(
          ErrorCodes.E_UNSAFE_PATH,
          `The bundle entry "${name}" is a ${type}, not a plain file: refused`,
          { details: { path: name, type } },
        );
      seen += 1;
      // Claimed only when read, so that an unread body is skipped by the reader.
      yield { name, size, body: { [Symbol.asyncIterator]: () => entry.stream() } };
    }
  } catch (error) {
    // Not a tar at all (no first entry could be read from it): not a bundle, rather than corrupt.
    if (seen === 0 && error instanceof NuwaxError && error.code === ErrorCodes.E_ARCHIVE) {
      throw bundleError(`${path.basename(file)} is not a nuwax bundle (not a tar archive)`, { file });
    }
    throw readError(error, file);
  }
}

async function readSmall(entry: BundleEntry): Promise<Buffer> {
  const limit = LIMITS[entry.name]!;
  if (entry.size > limit) throw bundleError(`The bundle's ${entry.name} is ${entry.size} bytes, more than ${limit}`);
  const chunks: Buffer[] = [];
  for await (const chunk of entry.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

/**
 * The index, checked whole against its schema before any package is read: a malformed one is
 * E_BUNDLE naming the field, never a TypeError later (reported as E_ARCHIVE, or hiding a real
 * E_HASH_MISMATCH). A newer format or client_min is said first: a newer nuwax may shape it otherwise.
 */
function parseIndex(bytes: Buffer, clientVersion: string): BundleIndex {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new NuwaxError(ErrorCodes.E_BUNDLE, `The bundle's ${INDEX_NAME} is not valid JSON`, { cause: error });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw bundleError(`The bundle's ${INDEX_NAME} is ${describeJson(raw)}, not a JSON object`);
  const { format, client_min: clientMin } = raw as Record<string, unknown>;
  const needs = typeof clientMin === 'string' && isValidVersion(clientMin) ? clientMin : null;
  if (typeof format === 'number' && format !== BUNDLE_FORMAT) {
    throw bundleError(
      `The bundle has format ${format}` +
        `; this nuwax ${clientVersion} reads format ${BUNDLE_FORMAT} (it needs nuwax ${needs ?? '?'} or later)`,
    );
  }
  if (needs !== null && compareVersions(needs, clientVersion) > 0) {
    throw new NuwaxError(
      ErrorCodes.E_CLIENT_TOO_OLD,
      `The bundle needs nuwax ${needs} or later; this is ${clientVersion}`,
    );
  }
  const result = bundleIndexSchema.safeParse(raw);
  if (!result.success) {
    const fields = result.error.issues.map((issue) => issue.path.map(String).join('.') || '(root)');
    const lines = result.error.issues.map((issue, position) => `${fields[position]}: ${issue.message}`);
    throw bundleError(`The bundle's ${INDEX_NAME} is malformed: ${lines.join('; ')}`, { issues: lines, fields });
  }
  return result.data;
}

/** The bundle's pseudo location: relative package URLs resolve under it, so a later run names the cached file alike. */
function bundleManifestUrl(file: string): string {
  return `${pathToFileURL(path.resolve(file)).href}/${MANIFEST_NAME}`;
}

function verifyHead(file: string, metadata: Map<string, Buffer>, options: ReadBundleOptions): BundleHead {
  const index = parseIndex(metadata.get(INDEX_NAME)!, options.clientVersion);
  const bytes = metadata.get(MANIFEST_NAME)!;
  const signature = metadata.get(SIGNATURE_NAME) ?? null;
  // The same rule as a fetched manifest: with public keys configured, unsigned or badly signed is refused.
  const verified = verifyManifestBytes(bytes, signature?.toString('utf8'), options.config);
  const url = bundleManifestUrl(file);
  const declared = declaredHashes(verified.manifest);
  for (const item of index.packages) {
    if (!declared.has(item.sha256))
      throw bundleError(`The bundle lists ${item.name}, which the manifest does not name`, { name: item.name });
  }
  const fetched: FetchedManifest = {
    manifest: resolvePackageUrls(verified.manifest, url),
    url,
    bytes,
    signed: verified.signed,
    signature: signature?.toString('utf8'),
    notModified: false,
  };
  return { file, index, fetched, signature };
}

const METADATA = [INDEX_NAME, MANIFEST_NAME, SIGNATURE_NAME];

/** Index first, then the manifest, then (optional) the signature, before any package; each once. */
async function readMetadata(
  entry: BundleEntry,
  metadata: Map<string, Buffer>,
  head: BundleHead | undefined,
): Promise<void> {
  if (head || METADATA.indexOf(entry.name) !== metadata.size) {
    throw bundleError(
      `The bundle's ${entry.name} is out of place (expected ${METADATA.join(', ')}, then the packages)`,
      { path: entry.name },
    );
  }
  metadata.set(entry.name, await readSmall(entry));
}

/** The index's record of a package entry, which must come once, with the size the index and the manifest give it. */
function packageRecord(head: BundleHead, entry: BundleEntry, seen: Set<string>): BundledPackage {
  const item = head.index.packages.find((candidate) => candidate.name === entry.name);
  if (!item)
    throw bundleError(`The bundle holds ${entry.name}, which its ${INDEX_NAME} does not list`, { path: entry.name });
  if (seen.has(entry.name)) throw bundleError(`The bundle holds ${entry.name} twice`, { path: entry.name });
  seen.add(entry.name);
  const declared = declaredHashes(head.fetched.manifest).get(item.sha256) ?? null;
  if (entry.size !== item.size || (declared !== null && declared !== entry.size)) {
    throw new NuwaxError(
      ErrorCodes.E_SIZE_MISMATCH,
      `The bundle's ${entry.name} is ${entry.size} bytes; its index says ${item.size}` +
        `${declared !== null ? ` and the manifest ${declared}` : ''}`,
      {
        details: { name: entry.name },
      },
    );
  }
  return item;
}

/**
 * Reads the bundle in order: the metadata, then the packages, each handed to `visit` (without
 * one it stops at the first package: the head alone). Every package the index lists must come.
 */
async function scanBundle(file: string, options: ReadBundleOptions, visit?: PackageVisitor): Promise<BundleHead> {
  const metadata = new Map<string, Buffer>();
  const seen = new Set<string>();
  let head: BundleHead | undefined;
  try {
    for await (const entry of bundleEntries(file, options.signal)) {
      if (METADATA.includes(entry.name)) {
        await readMetadata(entry, metadata, head);
        continue;
      }
      if (!PACKAGE_NAME.test(entry.name))
        throw bundleError(`The bundle holds an unexpected entry "${entry.name}": refused`, { path: entry.name });
      if (!metadata.has(MANIFEST_NAME))
        throw bundleError(`The bundle's packages come before its ${INDEX_NAME} and ${MANIFEST_NAME}`);
      // The signature is checked here, before a package byte is read.
      head ??= verifyHead(file, metadata, options);
      if (!visit) return head;
      await visit(entry, packageRecord(head, entry, seen));
    }
  } catch (error) {
    // A body cut short surfaces in the visitor's copy: it is still the bundle's fault.
    throw readError(error, file);
  }
  if (!metadata.has(MANIFEST_NAME))
    throw bundleError(`${path.basename(file)} is not a nuwax bundle: it has no ${INDEX_NAME} and ${MANIFEST_NAME}`, {
      file,
    });
  head ??= verifyHead(file, metadata, options);
  const missing = head.index.packages.filter((item) => !seen.has(item.name)).map((item) => item.name);
  if (visit && missing.length > 0)
    throw new NuwaxError(ErrorCodes.E_ARCHIVE, `The bundle is truncated: ${missing.join(', ')} missing`, {
      details: { missing },
    });
  return head;
}

/** The index and the verified manifest, from the start of the bundle only (cheap: the packages are not read). */
export function readBundleHead(file: string, options: ReadBundleOptions): Promise<BundleHead> {
  return scanBundle(path.resolve(file), options);
}

export interface ImportBundleOptions extends ReadBundleOptions {
  /** The download cache: files go where the downloader looks first (finalPathFor). */
  directory: string;
  /** The packages to keep, by sha256, with the URLs the upgrade will ask the downloader for. */
  wanted: Map<string, string[]>;
  onProgress?: ProgressListener;
}

export interface ImportedPackage {
  sha256: string;
  path: string;
  size: number;
}

/** The name a package is copied under until the whole bundle checks out. */
const IMPORT_TEMPORARY = /^\.[0-9a-f]{64}\.import\.tmp$/;

/**
 * Removes the temp files of an import that was killed mid-copy (kill -9, power loss: its own
 * cleanup never ran); they may be gigabytes. All of them, however young: the caller holds the
 * home's lock (SPEC 10; `nuwax import` takes it before reading the bundle), so no other import is
 * writing here. Were that ever broken, the other import would fail at its fsync or rename, never
 * install a wrong file. Only names of this pattern are touched: `.part` files are the downloader's.
 */
async function removeInterruptedImports(directory: string): Promise<void> {
  const leftovers = (await readdir(directory)).filter((name) => IMPORT_TEMPORARY.test(name));
  await Promise.all(leftovers.map((name) => rm(path.join(directory, name), { force: true })));
}

/**
 * Reads the whole bundle again, hashes every package (a tampered one anywhere refuses the bundle)
 * and copies the wanted ones into the download cache under temp names; only when the bundle was
 * read to its end with everything matching are they fsynced and renamed into place. On any
 * failure the temp files are removed: nothing is left in the cache. The caller holds the home's
 * lock: the temp files an interrupted import left are removed first.
 */
export async function importBundle(head: BundleHead, options: ImportBundleOptions): Promise<ImportedPackage[]> {
  await mkdir(options.directory, { recursive: true });
  await removeInterruptedImports(options.directory);
  const total = head.index.packages.reduce((sum, item) => sum + item.size, 0);
  const progress = byteProgress(total, options.onProgress);
  const copies = new Map<string, { temporary: string; size: number }>();
  try {
    const again = await scanBundle(head.file, options, async (entry, item) => {
      const keep = options.wanted.has(item.sha256);
      const temporary = path.join(options.directory, `.${item.sha256}.import.tmp`);
      if (keep) copies.set(item.sha256, { temporary, size: item.size });
      const hashing = hashingStream(progress.add);
      const sink = keep
        ? createWriteStream(temporary, { mode: 0o644 })
        : new Writable({ write: (_chunk, _encoding, callback) => callback() });
      await pipeline(entry.body, hashing.transform, sink, options.signal ? { signal: options.signal } : {});
      const actual = hashing.digest();
      if (actual !== item.sha256) {
        throw new NuwaxError(
          ErrorCodes.E_HASH_MISMATCH,
          `The bundle's package ${item.name} (${item.roles.join(', ')}) has sha256 ${actual}, ` +
            `not the ${item.sha256} the manifest gives: refusing the bundle`,
          {
            details: { name: item.name, expected: item.sha256, actual },
          },
        );
      }
    });
    if (
      !again.fetched.bytes.equals(head.fetched.bytes) ||
      !Buffer.from(again.signature ?? '').equals(Buffer.from(head.signature ?? ''))
    ) {
      throw bundleError('The bundle changed while it was read: refusing it');
    }
    const absent = [...options.wanted.keys()].filter((sha256) => !copies.has(sha256));
    if (absent.length > 0)
      throw new NuwaxError(ErrorCodes.E_NO_PACKAGE, `The bundle holds no package with sha256 ${absent.join(', ')}`);
    progress.finish();
    const imported: ImportedPackage[] = [];
    for (const [sha256, copy] of copies) {
      const final = finalPathFor(options.directory, sha256, options.wanted.get(sha256)!);
      await fsyncFile(copy.temporary);
      await rename(copy.temporary, final);
      imported.push({ sha256, path: final, size: copy.size });
    }
    await fsyncDirectory(options.directory);
    return imported;
  } catch (error) {
    await Promise.all([...copies.values()].map((copy) => rm(copy.temporary, { force: true })));
    throw error;
  }
}
