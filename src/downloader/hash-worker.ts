/**
 * The hashing thread of a download (SPEC 7: SHA-256 in the same pass as the write). The main
 * thread reads the socket and copies the body into shared slots; this thread hashes each slot and
 * writes the same bytes to the partial file, so hashing (the costliest part) overlaps the network.
 * Messages are handled strictly in order, which keeps the file and the hash in step.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, fdatasyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './worker-protocol.js';

const { file, slots } = workerData as { file: string; slots: SharedArrayBuffer[] };
const views = slots.map((slot) => Buffer.from(slot));
const port = parentPort!;
let fd = -1;
let hash: Hash = createHash('sha256');
/** Bytes of the file covered by `hash`, which is also where the next block is written. */
let end = 0;
let failed = false;

function reply(message: WorkerReply): void {
  port.postMessage(message);
}

function openFile(): number {
  // Positional writes (no O_APPEND): the file is truncated to where the hash ends, then written on.
  if (fd < 0) fd = openSync(file, constants.O_RDWR | constants.O_CREAT, 0o644);
  return fd;
}

/** Ensures `hash` covers exactly [0, offset) of the file and the file ends there. */
function prepare(offset: number): void {
  const handle = openFile();
  ftruncateSync(handle, offset);
  if (end === offset) return;
  hash = createHash('sha256');
  end = 0;
  const buffer = views[0]!;
  while (end < offset) {
    const read = readSync(handle, buffer, 0, Math.min(buffer.length, offset - end), end);
    if (read === 0)
      throw Object.assign(new Error(`${file} ended at ${end} while re-hashing ${offset} bytes`), { code: 'ESHORT' });
    hash.update(buffer.subarray(0, read));
    end += read;
  }
}

function writeBlock(slot: number, length: number): void {
  const block = views[slot]!.subarray(0, length);
  hash.update(block);
  let done = 0;
  while (done < length) done += writeSync(openFile(), block, done, length - done, end + done);
  end += length;
}

function fail(error: unknown): void {
  failed = true;
  const errno = error as NodeJS.ErrnoException;
  reply({ type: 'error', code: errno.code ?? 'EWORKER', message: errno.message ?? String(error), end });
}

port.on('message', (message: WorkerRequest) => {
  try {
    switch (message.type) {
      case 'prepare':
        if (!failed) prepare(message.offset);
        reply({ type: 'prepared', end });
        return;
      case 'block':
        if (!failed) writeBlock(message.slot, message.length);
        reply({ type: 'written', slot: message.slot, end });
        return;
      case 'digest':
        reply({ type: 'digest', hex: hash.copy().digest('hex'), end });
        return;
      case 'sync':
        if (fd >= 0) fdatasyncSync(fd);
        reply({ type: 'synced', end });
        return;
      case 'close':
        if (fd >= 0) closeSync(fd);
        fd = -1;
        reply({ type: 'closed', end });
        port.close();
        return;
    }
  } catch (error) {
    if (message.type === 'block') reply({ type: 'written', slot: message.slot, end });
    fail(error);
  }
});
