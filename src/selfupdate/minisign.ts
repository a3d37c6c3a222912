import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { ErrorCodes, NuwaxError } from '../errors/index.js';

/**
 * minisign's formats (what Tauri's updater signs client archives with): a public key is the
 * base64 of "Ed" + 8-byte key id + 32-byte ed25519 key; a .sig file is an untrusted comment line,
 * the base64 of algorithm ("ED": over the file's BLAKE2b-512, "Ed": over the file) + key id +
 * 64-byte signature, a trusted comment line, and the base64 of a global signature over the
 * signature and the trusted comment.
 */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const TRUSTED = 'trusted comment: ';
const UNTRUSTED = 'untrusted comment: ';

export interface MinisignPublicKey {
  keyId: Buffer;
  key: KeyObject;
}

function signatureError(message: string, details?: Record<string, unknown>): NuwaxError {
  return new NuwaxError(ErrorCodes.E_SIGNATURE, message, { details });
}

/** A key as `minisign -G` writes it: the .pub file's text, or only its base64 line. */
export function parseMinisignPublicKey(text: string): MinisignPublicKey {
  const line = text
    .split(/\r?\n/)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '' && !entry.startsWith(UNTRUSTED))[0];
  const raw = Buffer.from(line ?? '', 'base64');
  if (raw.length !== 42 || raw.subarray(0, 2).toString('latin1') !== 'Ed') {
    throw new NuwaxError(
      ErrorCodes.E_CONFIG,
      'security.client_public_keys: a key is a minisign public key (base64 of "Ed", a key id and 32 bytes)',
    );
  }
  const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw.subarray(10)]), format: 'der', type: 'spki' });
  return { keyId: raw.subarray(2, 10), key };
}

interface ParsedSignature {
  algorithm: 'ED' | 'Ed';
  keyId: Buffer;
  signature: Buffer;
  trustedComment: string;
  globalSignature: Buffer;
}

/** The .sig file's text, or its base64 (Tauri's `signature` field). */
export function parseMinisignSignature(signature: string): ParsedSignature {
  const text = signature.includes(UNTRUSTED) ? signature : Buffer.from(signature.trim(), 'base64').toString('utf8');
  const lines = text.split(/\r?\n/);
  if (lines.length < 4 || !lines[0]!.startsWith(UNTRUSTED) || !lines[2]!.startsWith(TRUSTED)) {
    throw signatureError('The client signature is not a minisign signature file');
  }
  const body = Buffer.from(lines[1]!.trim(), 'base64');
  const globalSignature = Buffer.from(lines[3]!.trim(), 'base64');
  const algorithm = body.subarray(0, 2).toString('latin1');
  if (body.length !== 74 || (algorithm !== 'ED' && algorithm !== 'Ed') || globalSignature.length !== 64) {
    throw signatureError('The client signature is not a minisign ed25519 signature');
  }
  return {
    algorithm,
    keyId: body.subarray(2, 10),
    signature: body.subarray(10),
    trustedComment: lines[2]!.slice(TRUSTED.length),
    globalSignature,
  };
}

async function fileDigest(file: string, algorithm: 'blake2b512' | 'identity', signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const hash = algorithm === 'blake2b512' ? createHash('blake2b512') : undefined;
  await pipeline(
    createReadStream(file),
    async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) {
        if (hash) hash.update(chunk);
        else chunks.push(chunk);
      }
    },
    { signal },
  );
  return hash ? hash.digest() : Buffer.concat(chunks);
}

/**
 * Verifies a file against a minisign signature and the trusted keys; returns the trusted comment.
 * Throws E_SIGNATURE when no key has the signature's id or the signature does not verify.
 */
export async function verifyMinisignFile(
  file: string,
  signature: string,
  keys: MinisignPublicKey[],
  signal?: AbortSignal,
): Promise<string> {
  const parsed = parseMinisignSignature(signature);
  const key = keys.find((candidate) => candidate.keyId.equals(parsed.keyId));
  if (!key) {
    throw signatureError('The client archive is signed with a key that is not in security.client_public_keys', {
      key_id: Buffer.from(parsed.keyId).reverse().toString('hex').toUpperCase(),
    });
  }
  // "Ed" (legacy) signs the whole file: it is read into memory; "ED" signs its BLAKE2b-512.
  const message = await fileDigest(file, parsed.algorithm === 'ED' ? 'blake2b512' : 'identity', signal);
  if (!verify(null, message, key.key, parsed.signature)) {
    throw signatureError('The client archive does not match its minisign signature');
  }
  const global = Buffer.concat([parsed.signature, Buffer.from(parsed.trustedComment, 'utf8')]);
  if (!verify(null, global, key.key, parsed.globalSignature)) {
    throw signatureError("The minisign signature's trusted comment does not verify");
  }
  return parsed.trustedComment;
}

export interface MinisignSigner {
  keyId: Buffer;
  privateKey: KeyObject;
  /** The public key in minisign's format (base64 line), for `[security] client_public_keys`. */
  publicKey: string;
}

/**
 * A minisign signer from an ed25519 private key (`release keygen`'s PEM or a base64 seed). The key
 * id is derived from the public key, so one key always signs with the same id.
 */
export function minisignSigner(privateKey: KeyObject): MinisignSigner {
  const raw = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  const keyId = createHash('blake2b512').update(raw).digest().subarray(0, 8);
  const publicKey = Buffer.concat([Buffer.from('Ed', 'latin1'), keyId, raw]).toString('base64');
  return { keyId, privateKey, publicKey };
}

/** A prehashed ("ED") minisign signature of a file, as the .sig file's text. */
export async function signMinisignFile(file: string, signer: MinisignSigner, trustedComment: string): Promise<string> {
  const digest = await fileDigest(file, 'blake2b512');
  const signature = sign(null, digest, signer.privateKey);
  const body = Buffer.concat([Buffer.from('ED', 'latin1'), signer.keyId, signature]);
  const global = sign(null, Buffer.concat([signature, Buffer.from(trustedComment, 'utf8')]), signer.privateKey);
  return [
    `${UNTRUSTED}signature from nuwax release`,
    body.toString('base64'),
    `${TRUSTED}${trustedComment}`,
    global.toString('base64'),
    '',
  ].join('\n');
}
