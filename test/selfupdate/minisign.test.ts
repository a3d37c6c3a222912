import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  minisignSigner,
  parseClientManifest,
  parseMinisignPublicKey,
  signMinisignFile,
  verifyMinisignFile,
  writeClientManifest,
} from '../../src/selfupdate/index.js';
import { withTempDir } from '../helpers/cli.js';
import { PACKAGE_REQUIRED } from './packages.js';

const haveMinisign = spawnSync('sh', ['-c', 'command -v minisign'], { stdio: 'ignore' }).status === 0;
if (!haveMinisign && PACKAGE_REQUIRED) throw new Error('NUWAX_REQUIRE_PACKAGE=1 but minisign is not installed');
const realMinisign = haveMinisign ? {} : { skip: 'minisign is not installed (apt-get install minisign)' };

/** A key pair made by the real minisign, without a password. */
function minisignKeys(directory: string): { publicKeyFile: string; secretKeyFile: string } {
  const publicKeyFile = path.join(directory, 'release.pub');
  const secretKeyFile = path.join(directory, 'release.key');
  execFileSync('minisign', ['-G', '-W', '-p', publicKeyFile, '-s', secretKeyFile], { stdio: 'ignore' });
  return { publicKeyFile, secretKeyFile };
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

describe('minisign signatures made by the real minisign', realMinisign, () => {
  test('a prehashed (ED) signature verifies against the .pub file and the trusted comment is returned', async () => {
    await withTempDir('minisign-real', async (directory) => {
      const keys = minisignKeys(directory);
      const file = path.join(directory, 'nuwax-0.2.0-linux-x86_64.tar.gz');
      await writeFile(file, Buffer.alloc(3 * 1024 * 1024, 7));
      execFileSync('minisign', ['-S', '-s', keys.secretKeyFile, '-m', file, '-t', 'nuwax 0.2.0'], { stdio: 'ignore' });
      const signature = await readFile(`${file}.minisig`, 'utf8');
      assert.match(Buffer.from(signature.split('\n')[1]!, 'base64').subarray(0, 2).toString('latin1'), /^ED$/);
      const key = parseMinisignPublicKey(await readFile(keys.publicKeyFile, 'utf8'));
      // Tauri's `signature` is the base64 of the whole .sig file.
      const trusted = await verifyMinisignFile(file, Buffer.from(signature).toString('base64'), [key]);
      assert.equal(trusted, 'nuwax 0.2.0');
    });
  });

  test('a legacy (Ed) signature verifies too', async () => {
    await withTempDir('minisign-legacy', async (directory) => {
      const keys = minisignKeys(directory);
      const file = path.join(directory, 'archive.tar.gz');
      await writeFile(file, 'legacy signed bytes');
      execFileSync('minisign', ['-S', '-l', '-s', keys.secretKeyFile, '-m', file], { stdio: 'ignore' });
      const key = parseMinisignPublicKey(await readFile(keys.publicKeyFile, 'utf8'));
      await verifyMinisignFile(file, await readFile(`${file}.minisig`, 'utf8'), [key]);
    });
  });

  test('a changed byte, another key, or a changed trusted comment is E_SIGNATURE', async () => {
    await withTempDir('minisign-bad', async (directory) => {
      const keys = minisignKeys(directory);
      await mkdir(path.join(directory, 'other'));
      const other = minisignKeys(path.join(directory, 'other'));
      const file = path.join(directory, 'archive.tar.gz');
      await writeFile(file, 'the real archive');
      execFileSync('minisign', ['-S', '-s', keys.secretKeyFile, '-m', file], { stdio: 'ignore' });
      const signature = await readFile(`${file}.minisig`, 'utf8');
      const key = parseMinisignPublicKey(await readFile(keys.publicKeyFile, 'utf8'));
      await writeFile(file, 'the real archivE');
      assert.equal(await codeOf(verifyMinisignFile(file, signature, [key])), 'E_SIGNATURE');
      await writeFile(file, 'the real archive');
      const otherKey = parseMinisignPublicKey(await readFile(other.publicKeyFile, 'utf8'));
      assert.equal(otherKey.keyId.equals(key.keyId), false);
      assert.equal(await codeOf(verifyMinisignFile(file, signature, [otherKey])), 'E_SIGNATURE');
      const lines = signature.split('\n');
      lines[2] = 'trusted comment: something else';
      assert.equal(await codeOf(verifyMinisignFile(file, lines.join('\n'), [key])), 'E_SIGNATURE');
      await verifyMinisignFile(file, signature, [otherKey, key]);
    });
  });

  test("the real minisign verifies nuwax's own signature with nuwax's public key", async () => {
    await withTempDir('minisign-ours', async (directory) => {
      const signer = minisignSigner(generateKeyPairSync('ed25519').privateKey);
      const file = path.join(directory, 'archive.tar.gz');
      await writeFile(file, Buffer.alloc(100_000, 3));
      await writeFile(`${file}.minisig`, await signMinisignFile(file, signer, 'timestamp:1\tfile:archive.tar.gz'));
      const verified = spawnSync('minisign', ['-V', '-P', signer.publicKey, '-m', file], { encoding: 'utf8' });
      assert.equal(verified.status, 0, verified.stderr);
      assert.match(verified.stdout, /Signature and comment signature verified/);
    });
  });
});

describe("the client release manifest (Tauri's latest.json)", () => {
  test('release client-manifest writes every platform with url, base64 .sig and sha256; the reader picks this one', async () => {
    await withTempDir('client-manifest', async (directory) => {
      const signer = minisignSigner(generateKeyPairSync('ed25519').privateKey);
      const x64 = path.join(directory, 'nuwax-0.2.0-linux-x86_64.tar.gz');
      const arm = path.join(directory, 'nuwax-0.2.0-linux-aarch64.tar.gz');
      await writeFile(x64, 'x64 archive');
      await writeFile(arm, 'arm archive');
      const text = await writeClientManifest({
        version: '0.2.0',
        notes: 'fixes',
        archives: [x64, arm],
        urlBase: 'https://example.test/cli/',
        signer,
      });
      const json = JSON.parse(text) as {
        version: string;
        pub_date: string;
        platforms: Record<string, { url: string; signature: string; sha256: string }>;
      };
      assert.deepEqual(Object.keys(json.platforms).sort(), ['linux-aarch64', 'linux-x86_64']);
      assert.equal(json.platforms['linux-x86_64']!.url, 'https://example.test/cli/nuwax-0.2.0-linux-x86_64.tar.gz');
      assert.match(json.platforms['linux-x86_64']!.sha256, /^[0-9a-f]{64}$/);
      const release = parseClientManifest(
        text,
        'https://example.test/api/v1/cli/versions/latest.json',
        'linux-aarch64',
      );
      assert.equal(release.version, '0.2.0');
      assert.equal(release.platform?.url, 'https://example.test/cli/nuwax-0.2.0-linux-aarch64.tar.gz');
      const key = parseMinisignPublicKey(signer.publicKey);
      await verifyMinisignFile(arm, release.platform!.signature, [key]);
      assert.equal(await codeOf(verifyMinisignFile(x64, release.platform!.signature, [key])), 'E_SIGNATURE');
    });
  });

  test("nuwax-cli's shape without sha256, with a relative URL and a v prefix, is read; another arch has no platform", () => {
    const text = JSON.stringify({
      version: 'v0.3.1',
      notes: 'n',
      pub_date: '2026-11-20T10:00:00Z',
      platforms: { 'linux-x86_64': { url: '/files/nuwax.tar.gz', signature: 'c2ln' } },
    });
    const release = parseClientManifest(text, 'http://127.0.0.1:9/api/v1/cli/versions/latest.json', 'linux-x86_64');
    assert.equal(release.version, '0.3.1');
    assert.equal(release.platform?.url, 'http://127.0.0.1:9/files/nuwax.tar.gz');
    assert.equal(release.platform?.sha256, undefined);
    assert.equal(parseClientManifest(text, 'http://127.0.0.1:9/', 'linux-aarch64').platform, undefined);
    assert.throws(() => parseClientManifest('{"version":"x"}', 'http://127.0.0.1:9/'), { code: 'E_MANIFEST' });
  });
});
