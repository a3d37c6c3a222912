#!/usr/bin/env node
import v8 from 'node:v8';
import { Command, CommanderError, Option } from 'commander';
import { CLIENT_VERSION } from './client-version.js';

// Process-wide V8 flags, set here and nowhere else, before undici's first connection. Liftoff
// alone compiles undici's llhttp parser without TurboFan's ~35 MiB of zone memory; gc lets a
// download free socket buffers as it goes (src/downloader/runtime.ts). Both keep a download's
// memory flat on an edge box (scripts/bench/README.md, "download"). A young generation kept at
// 1 MiB (--semi-space-growth-factor=1) helped a backup of a million files but promoted a restore's
// inflated buffers to the old generation (peak 93-100 -> 138-139 MiB), so it is not set ("backup").
v8.setFlagsFromString('--liftoff-only');
v8.setFlagsFromString('--expose-gc');

type Register = (program: Command) => unknown;

/**
 * Each command's module is imported only when that command runs, so `nuwax status` does not load
 * undici, the upgrade or the TUI: status must answer well under half a second.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  check: async () => (await import('./commands/check.js')).registerCheck,
  status: async () => (await import('./commands/status.js')).registerStatus,
  history: async () => (await import('./commands/history.js')).registerHistory,
  release: async () => {
    const [{ registerRelease }, { registerReleasePackage }, { registerReleaseClientManifest }] = await Promise.all([
      import('./commands/release.js'),
      import('./commands/release-package.js'),
      import('./commands/self-update.js'),
    ]);
    return (program: Command) => {
      const release = registerRelease(program);
      registerReleasePackage(release);
      registerReleaseClientManifest(release);
    };
  },
  upgrade: async () => (await import('./commands/upgrade.js')).registerUpgrade,
  import: async () => (await import('./commands/import.js')).registerImport,
  rollback: async () => (await import('./commands/rollback.js')).registerRollback,
  doctor: async () => (await import('./commands/doctor.js')).registerDoctor,
  serve: async () => (await import('./commands/serve.js')).registerServe,
  daemon: async () => (await import('./commands/daemon.js')).registerDaemon,
  backup: async () => (await import('./commands/backup.js')).registerBackup,
  repair: async () => (await import('./commands/repair.js')).registerRepair,
  'self-update': async () => (await import('./commands/self-update.js')).registerSelfUpdate,
};

export function registerCommand(name: string, load: () => Promise<Register>): void {
  COMMANDS[name] = load;
}

/**
 * `--home`, `--config`, `--json` and `--log-level` (SPEC 11), defined on the program and again on
 * every command, so they are accepted before or after the command name. No defaults here: the
 * nearest one given wins (see globalOptions in context.ts).
 */
export function addGlobalOptions(command: Command): Command {
  return command
    .option('--home <dir>', 'home directory (default: $NUWAX_HOME, else the current directory)')
    .option('--config <file>', 'config file (default: <home>/config.toml)')
    .option('--json', 'machine-readable output')
    .addOption(
      new Option('--log-level <level>', 'log level (default: warn)').choices([
        'trace',
        'debug',
        'info',
        'warn',
        'error',
        'silent',
      ]),
    );
}

function addGlobalOptionsToCommands(command: Command): void {
  for (const sub of command.commands) {
    addGlobalOptions(sub);
    addGlobalOptionsToCommands(sub);
  }
}

export function buildProgram(): Command {
  return (
    addGlobalOptions(
      new Command('nuwax')
        .description('keeps a docker-compose application on an edge box up to date, and never leaves it broken')
        .version(CLIENT_VERSION),
    )
      // Options after a command are that command's, so `release pack --version 1.0.0` is the
      // release's version, not nuwax's; the global options are also every command's own.
      .enablePositionalOptions()
      .showHelpAfterError()
      .exitOverride()
  );
}

/** The first word that is not a global option or its value. */
function commandName(argv: string[]): string | undefined {
  const withValue = new Set(['--home', '--config', '--log-level']);
  for (let index = 2; index < argv.length; index += 1) {
    const word = argv[index]!;
    if (withValue.has(word)) index += 1;
    else if (!word.startsWith('-')) return word;
  }
  return undefined;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  const name = commandName(argv);
  const wanted = name && COMMANDS[name] ? [COMMANDS[name]!] : Object.values(COMMANDS);
  for (const load of wanted) (await load())(program);
  addGlobalOptionsToCommands(program);
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; anything else commander rejects is a usage error (SPEC 8: exit 2).
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    throw error;
  }
}

await main(process.argv);
