/**
 * The thread that hashes a download by following its file (SPEC 7: the SHA-256 of exactly the
 * bytes in the file; follower.ts says why). It reads the partial file from byte 0 and hashes it,
 * never past `limit`, the end of what the main thread's writes have put in the file; when it
 * catches up it sleeps until a batch more is there. A new epoch means the file was cut (a restart
 * from zero): what was hashed is dropped and the thread starts again from byte 0.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { type MessagePort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { type FollowReply, type FollowRequest, followWords, LIMIT_BITS, LIMIT_MASK } from './worker-protocol.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';

/** Bytes per read: small enough to stay in the CPU cache between the copy and the hash. */
const READ_BYTES = 256 * 1024;
/** Once caught up, sleep until this much more is written: each wake-up costs the main thread a system call. */
const WAKE_BATCH_BYTES = 8 * 1024 * 1024;
/** A wait is bounded, so a lost wake-up could only ever cost this much. */
const WAIT_MS = 500;

const { file, shared, port } = workerData as { file: string; shared: SharedArrayBuffer; port: MessagePort };
const { bell, asleep, position, wakeAt } = followWords(shared);
const buffer = Buffer.allocUnsafeSlow(READ_BYTES);
let fd = -1;
let epoch = 0n;
let hash: Hash = createHash('sha256');
let hashed = 0;
/** A digest asked for and not yet answered. */
let asked: { end: number; epoch: bigint } | undefined;

function reply(message: FollowReply): void {
  port.postMessage(message);
}

function current(): { epoch: bigint; limit: number } {
  const word = Atomics.load(position, 0);
  return { epoch: word >> LIMIT_BITS, limit: Number(word & LIMIT_MASK) };
}

/** Reads and hashes the next piece below `limit`; drops it when the file was cut meanwhile. */
function hashNext(limit: number): void {
  if (fd < 0) fd = openSync(file, constants.O_RDONLY);
  const read = readSync(fd, buffer, 0, Math.min(READ_BYTES, limit - hashed), hashed);
  // The main thread moves to a new epoch before it cuts the file: the same epoch after the read
  // means that every byte read lay below a limit of this epoch, i.e. was final.
  if (current().epoch !== epoch) return;
  if (read === 0)
    throw new NuwaxError(ErrorCodes.E_IO, `${file} ended at ${hashed} bytes, before the ${limit} bytes written to it`);
  hash.update(buffer.subarray(0, read));
  hashed += read;
}

/** Takes the messages that came in; false once asked to stop. */
function takeMessages(): boolean {
  for (let received = receiveMessageOnPort(port); received; received = receiveMessageOnPort(port)) {
    const message = received.message as FollowRequest;
    if (message.type === 'close') return false;
    asked = { end: message.end, epoch: BigInt(message.epoch) };
  }
  return true;
}

function answer(): void {
  if (!asked || asked.epoch !== epoch || hashed < asked.end) return;
  const { end } = asked;
  asked = undefined;
  if (hashed === end) reply({ type: 'digest', hex: hash.copy().digest('hex'), end });
  else
    reply({
      type: 'error',
      code: ErrorCodes.E_IO,
      message: `${file}: the digest of ${end} bytes was asked for, but ${hashed} were written`,
    });
}

/** Waits until the bell moves past `ring`; `asleep`, set first, makes sure a ring after `ring` wakes it. */
function sleep(ring: number, until: number): void {
  Atomics.store(wakeAt, 0, BigInt(until));
  Atomics.store(asleep, 0, 1);
  Atomics.wait(bell, 0, ring, WAIT_MS);
  Atomics.store(asleep, 0, 0);
}

function follow(): void {
  for (;;) {
    const ring = Atomics.load(bell, 0);
    if (!takeMessages()) return;
    const now = current();
    if (now.epoch !== epoch) {
      epoch = now.epoch;
      hash = createHash('sha256');
      hashed = 0;
    }
    if (hashed < now.limit) {
      hashNext(now.limit);
      continue;
    }
    answer();
    sleep(ring, hashed + WAKE_BATCH_BYTES);
  }
}

/** After a failure the thread stays until it is closed, so its report reaches the main thread before its exit does. */
function waitForClose(): void {
  for (;;) {
    const ring = Atomics.load(bell, 0);
    if (!takeMessages()) return;
    sleep(ring, Number.MAX_SAFE_INTEGER);
  }
}

try {
  follow();
} catch (error) {
  // An errno error keeps its code (ENOSPC, EIO) for the main thread to map; anything else is ours.
  const errno = error as NodeJS.ErrnoException;
  const code = error instanceof NuwaxError ? error.code : (errno.code ?? ErrorCodes.E_INTERNAL);
  reply({ type: 'error', code, message: errno.message ?? String(error) });
  waitForClose();
} finally {
  if (fd >= 0) closeSync(fd);
  port.close();
}
