import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { writeFileAtomic } from '../../fsutil/index.js';
import { createDispatcher, loadPrivateKey } from '../../manifest/index.js';
import {
  minisignSigner,
  runSelfUpdate,
  type SelfUpdateContext,
  type SelfUpdateResult,
  writeClientManifest,
} from '../../selfupdate/index.js';
import { CLIENT_VERSION } from '../client-version.js';
import { action, type CliContext } from '../context.js';
import { withLock } from '../locked.js';
import { confirmInTerminal } from './confirm.js';

export function selfUpdateContext(context: CliContext, signal?: AbortSignal): SelfUpdateContext {
  return {
    config: context.config,
    home: context.home,
    downloadsDir: context.paths.downloadsDir,
    store: context.store,
    logger: context.logger,
    clientVersion: CLIENT_VERSION,
    dispatcher: createDispatcher(context.config),
    signal,
  };
}

function describe(result: SelfUpdateResult): string {
  switch (result.status) {
    case 'up_to_date':
      return `nuwax ${result.current} is up to date (the server offers ${result.offered})`;
    case 'available':
      return `nuwax ${result.offered} is available (running ${result.current}); \`self-update --yes\` installs it`;
    case 'skipped':
      return `nuwax ${result.offered} skipped: ${result.reason}`;
    case 'switched':
      return `switched to nuwax ${result.to}; restart to run it`;
    case 'success':
      return `nuwax ${result.from} → ${result.to}: the new client runs`;
    case 'failed':
      return `nuwax ${result.to} not installed (${result.error.code}: ${result.error.message}); ${result.kept} runs`;
  }
}

/** `nuwax self-update [--check] [--yes]`: the client's own update, by hand. */
export function registerSelfUpdate(program: Command): void {
  program
    .command('self-update')
    .description("update nuwax itself from the server's client releases (minisign-verified, with a self-test)")
    .option('--check', 'only say whether a newer client is offered')
    .option('--yes', 'do not ask for confirmation')
    .action(
      action(async (context, flags: { check?: boolean; yes?: boolean }) => {
        const checkOnly = flags.check === true;
        // Never in the middle of an application upgrade: the home's lock is held throughout.
        const result = await withLock(context, 'nuwax self-update', async () => {
          const update = selfUpdateContext(context);
          const found = await runSelfUpdate(update, { checkOnly: true, confirm: false });
          if (checkOnly || found.status !== 'available') return found;
          if (!flags.yes && !(await confirmInTerminal(`Install nuwax ${found.offered} (running ${found.current})?`))) {
            return found;
          }
          return runSelfUpdate(update, { confirm: true });
        });
        context.print(describe(result), result);
        return result.status === 'failed' ? 1 : 0;
      }),
    );
}

/** `release client-manifest`: the latest.json announcing a client release (Tauri's format + sha256). */
export function registerReleaseClientManifest(release: Command): void {
  release
    .command('client-manifest')
    .description("write latest.json for nuwax's own archives (signature: <archive>.sig from minisign, or -k)")
    .argument('<archives...>', 'nuwax-<version>-linux-<arch>.tar.gz from `npm run package`')
    .requiredOption('--version <version>', 'the client version')
    .requiredOption('--url-base <url>', 'where the archives are served (each URL is this + the file name)')
    .option('--notes <text>', 'release notes', '')
    .option('-k, --key <file>', 'ed25519 private key (`release keygen`) to sign archives without a .sig')
    .option('-o, --output <file>', 'output file', 'latest.json')
    .action(
      action(
        async (
          context,
          archives: string[],
          options: { version: string; urlBase: string; notes: string; key?: string; output: string },
        ) => {
          const signer = options.key
            ? minisignSigner(loadPrivateKey(await readFile(path.resolve(options.key), 'utf8')))
            : undefined;
          const text = await writeClientManifest({
            version: options.version,
            notes: options.notes,
            archives: archives.map((archive) => path.resolve(archive)),
            urlBase: options.urlBase,
            signer,
          });
          const output = path.resolve(options.output);
          await writeFileAtomic(output, text);
          const publicKey = signer?.publicKey;
          const lines = [`wrote ${output}`];
          if (publicKey) lines.push(`[security] client_public_keys = ["${publicKey}"]`);
          context.print(lines, { file: output, client_public_key: publicKey ?? null });
        },
      ),
    );
}
