import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../../config/index.js';
import { ErrorCodes, NuwaxError } from '../../errors/index.js';
import { formatBytes } from '../../fsutil/index.js';
import { buildManifest, createBundle, signManifestFile, writeKeyPair, writeManifest } from '../../release/index.js';
import { action } from '../context.js';

function parseArch(value: string): 'x86_64' | 'aarch64' {
  const mapped = ({ x86_64: 'x86_64', amd64: 'x86_64', x64: 'x86_64', aarch64: 'aarch64', arm64: 'aarch64' } as const)[
    value as 'x86_64'
  ];
  if (!mapped) throw new NuwaxError(ErrorCodes.E_USAGE, `--arch must be x86_64 or aarch64, not "${value}"`);
  return mapped;
}

/** The publisher's tools (SPEC 11). Returns the `release` command so other files can add subcommands. */
export function registerRelease(program: Command): Command {
  const release = program
    .command('release')
    .description("the publisher's tools: keygen, pack, patch, manifest, sign, bundle");

  release
    .command('keygen')
    .description(
      'make an ed25519 signing key pair: PREFIX.key (keep it secret) and PREFIX.pub (for security.public_keys)',
    )
    .option('-o, --output <prefix>', 'file prefix', 'nuwax-release')
    .action(
      action(async (context, options: { output: string }) => {
        const keys = await writeKeyPair(path.resolve(options.output));
        context.print(
          [
            `private key: ${keys.privateKeyFile}`,
            `public key:  ${keys.publicKeyFile}`,
            '',
            'config.toml:',
            '[security]',
            `public_keys = ["${keys.publicKey}"]`,
          ],
          { public_key: keys.publicKey, private_key_file: keys.privateKeyFile, public_key_file: keys.publicKeyFile },
        );
      }),
    );

  release
    .command('manifest')
    .description('build a manifest from package files (computes sha256 and size; reads <file>.release.json sidecars)')
    .argument('<packages...>', 'package files made by `release pack` / `release patch`')
    .requiredOption('--version <version>', 'the release version')
    .option('--notes <text>', 'release notes')
    .option('--notes-file <file>', 'release notes from a file')
    .option('--base-url <url>', 'where the packages will be served (default: URLs relative to the manifest)')
    .option('--arch <arch>', 'arch of packages without a sidecar', 'x86_64')
    .option('--expires <duration>', 'refuse the manifest after this long, e.g. 30d')
    .option('--min-client <version>', 'oldest nuwax that may use it')
    .option('-o, --output <file>', 'output file', 'manifest.json')
    .action(
      action(
        async (
          context,
          packages: string[],
          options: {
            version: string;
            notes?: string;
            notesFile?: string;
            baseUrl?: string;
            arch: string;
            expires?: string;
            minClient?: string;
            output: string;
          },
        ) => {
          const notes = options.notesFile ? await readFile(options.notesFile, 'utf8') : options.notes;
          const manifest = await buildManifest({
            version: options.version,
            packages: packages.map((file) => path.resolve(file)),
            arch: parseArch(options.arch),
            notes,
            baseUrl: options.baseUrl,
            expires: options.expires ? new Date(Date.now() + parseDuration(options.expires) * 1000) : undefined,
            minClient: options.minClient,
          });
          const output = path.resolve(options.output);
          await writeManifest(manifest, output);
          context.print(
            `wrote ${output} for ${options.version} (${packages.length} package${packages.length === 1 ? '' : 's'})`,
            { manifest: output, ...manifest },
          );
        },
      ),
    );

  release
    .command('sign')
    .description('sign a manifest file: writes <manifest>.sig (base64 ed25519 over the exact bytes)')
    .argument('<manifest>', 'manifest file')
    .requiredOption('-k, --key <file>', 'private key file from `release keygen`')
    .action(
      action(async (context, manifest: string, options: { key: string }) => {
        const output = await signManifestFile(path.resolve(manifest), path.resolve(options.key));
        context.print(`wrote ${output}`, { signature: output });
      }),
    );

  release
    .command('bundle')
    .description(
      'write one offline bundle (a tar) of a manifest, its signature and its packages, ' +
        'for `nuwax import` on a box with no network',
    )
    .requiredOption(
      '--manifest <file>',
      'manifest.json, or the release folder holding it (with manifest.json.sig and the packages)',
    )
    .option('--packages <dir>', 'folder holding the package files (default: beside the manifest)')
    .option('--arch <arches>', 'only these arches, comma-separated (default: every arch in the manifest)')
    .requiredOption('-o, --output <file>', 'bundle file, e.g. release-1.4.0.2.nuwax.tar')
    .action(
      action(async (context, options: { manifest: string; packages?: string; arch?: string; output: string }) => {
        const bundle = await createBundle({
          manifest: path.resolve(options.manifest),
          output: path.resolve(options.output),
          packagesDir: options.packages ? path.resolve(options.packages) : undefined,
          arches: options.arch
            ? [...new Set(options.arch.split(',').map((arch) => parseArch(arch.trim())))]
            : undefined,
        });
        context.print(
          `wrote ${bundle.output} (${formatBytes(bundle.size)}): ${bundle.version}, ` +
            `${bundle.signed ? 'signed' : 'unsigned'}, ` +
            `${bundle.packages.map((item) => item.roles.join('+')).join(', ')}`,
          { file: bundle.output, ...bundle },
        );
      }),
    );
  return release;
}

export { parseArch };
