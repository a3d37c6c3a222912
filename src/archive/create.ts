import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readlink, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tarStream from 'tar-stream';
import { createProgressReporter, type ProgressListener, type StepName } from '../events/index.js';
import { throwIfAborted } from '../errors/index.js';
import { commitFile, temporaryPathFor } from '../fsutil/index.js';

export interface CreateOptions {
  level?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  step?: StepName;
  /** Added first, e.g. a metadata file describing the archive. */
  extraEntries?: Array<{ name: string; content: Buffer }>;
  /** File mode of the archive (backups are 0600). */
  mode?: number;
}

export interface CreateResult {
  files: number;
  bytes: number;
  size: number;
  sha256: string;
  entries: number;
  missing: string[];
}

/**
 * Streams a tar.gz of `paths` (relative to `root`) into `output`: temp name, fsync, rename.
 * Symlinks are stored as links, never followed; modes and mtimes are kept.
 */
export async function createTarGz(root: string, paths: string[], output: string, options: CreateOptions = {}): Promise<CreateResult> {
  await mkdir(path.dirname(output), { recursive: true });
  const temporary = temporaryPathFor(output);
  const pack = tarStream.pack();
  const hash = createHash('sha256');
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  const result: CreateResult = { files: 0, bytes: 0, size: 0, sha256: '', entries: 0, missing: [] };
  const report = createProgressReporter(options.step ?? 'backing_up', null, options.onProgress);
  const writing = pipeline(pack, createGzip({ level: options.level ?? 6, chunkSize: 1 << 18 }), counter, createWriteStream(temporary, { mode: options.mode ?? 0o644 }), options.signal ? { signal: options.signal } : {});
  writing.catch(() => undefined);

  const add = (header: Partial<tarStream.Header> & { name: string }, body?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      pack.entry(header, body ?? '', (error) => (error ? reject(error) : resolve()));
    });

  const walk = async (relative: string): Promise<void> => {
    throwIfAborted(options.signal);
    const absolute = path.join(root, ...relative.split('/'));
    const info = await lstat(absolute);
    const common = { name: relative, mode: info.mode & 0o7777, mtime: info.mtime, uid: 0, gid: 0 };
    result.entries += 1;
    if (info.isDirectory()) {
      await add({ ...common, type: 'directory' });
      for (const name of (await readdir(absolute)).sort()) await walk(`${relative}/${name}`);
    } else if (info.isSymbolicLink()) {
      await add({ ...common, type: 'symlink', linkname: await readlink(absolute) });
    } else if (info.isFile()) {
      const entry = pack.entry({ ...common, type: 'file', size: info.size });
      await pipeline(createReadStream(absolute, { highWaterMark: 1 << 20 }), entry);
      result.files += 1;
      result.bytes += info.size;
      report.update(result.bytes, { files: result.files });
    }
  };

  try {
    for (const extra of options.extraEntries ?? []) await add({ name: extra.name, type: 'file', size: extra.content.length, mode: 0o600, mtime: new Date() }, extra.content);
    for (const relative of paths) {
      const exists = await lstat(path.join(root, ...relative.split('/'))).catch(() => null);
      if (!exists) result.missing.push(relative);
      else await walk(relative);
    }
    pack.finalize();
    await writing;
    await commitFile(temporary, output);
  } catch (error) {
    pack.destroy();
    await rm(temporary, { force: true });
    throw error;
  }
  report.finish(result.bytes, { files: result.files });
  return { ...result, size, sha256: hash.digest('hex') };
}

/** Reads every entry to the end: a truncated or corrupted archive throws (used by verify). */
export async function listArchive(file: string, options: { signal?: AbortSignal } = {}): Promise<Array<{ name: string; type: string; size: number }>> {
  const extract = tarStream.extract();
  const entries: Array<{ name: string; type: string; size: number }> = [];
  const { createGunzip } = await import('node:zlib');
  const feeding = pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), createGunzip(), extract, options.signal ? { signal: options.signal } : {});
  feeding.catch(() => undefined);
  for await (const entry of extract) {
    entries.push({ name: entry.header.name, type: entry.header.type ?? 'file', size: entry.header.size ?? 0 });
    // Drain the body: a truncated or corrupt archive errors here instead of hanging.
    for await (const _chunk of entry) {
      /* drained */
    }
  }
  await feeding;
  return entries;
}
