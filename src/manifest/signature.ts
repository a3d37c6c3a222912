import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ErrorCodes, NuwaxError } from '../errors/index.js';

// DER prefix of an ed25519 SubjectPublicKeyInfo / PKCS#8 key; the raw 32 bytes follow it.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** SPEC 4: a public key is the base64 of the raw 32-byte key, or a path to a PEM file. */
export function loadPublicKey(spec: string): KeyObject {
  const text = spec.trim();
  try {
    if (text.includes('BEGIN PUBLIC KEY')) return createPublicKey(text);
    const raw = Buffer.from(text, 'base64');
    if (raw.length === 32 && /^[A-Za-z0-9+/=_-]+$/.test(text)) {
      return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    }
    return createPublicKey(readFileSync(text, 'utf8'));
  } catch (error) {
    throw new NuwaxError(
      ErrorCodes.E_CONFIG,
      `security.public_keys: "${spec.slice(0, 60)}" is neither a base64 ed25519 key nor a readable PEM file`,
      {
        cause: error,
      },
    );
  }
}

export function loadPrivateKey(text: string): KeyObject {
  const trimmed = text.trim();
  if (trimmed.includes('BEGIN')) return createPrivateKey(trimmed);
  const raw = Buffer.from(trimmed, 'base64');
  if (raw.length !== 32)
    throw new NuwaxError(ErrorCodes.E_USAGE, 'A private key is a PEM file or the base64 of a raw 32-byte ed25519 seed');
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

export function generateKeyPair(): { publicKey: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return {
    publicKey: spki.subarray(SPKI_PREFIX.length).toString('base64'),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

export function signBytes(bytes: Uint8Array, privateKey: KeyObject): string {
  return sign(null, bytes, privateKey).toString('base64');
}

/** True when any configured key (several allow rotation) verifies the signature over the exact bytes. */
export function verifySignature(bytes: Uint8Array, signatureBase64: string, publicKeys: KeyObject[]): boolean {
  const signature = Buffer.from(signatureBase64.trim(), 'base64');
  if (signature.length !== 64) return false;
  return publicKeys.some((key) => verify(null, bytes, key, signature));
}
