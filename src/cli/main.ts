#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { CLIENT_VERSION } from './client-version.js';
import { registerCheck } from './commands/check.js';
import { registerHistory } from './commands/history.js';
import { registerRelease } from './commands/release.js';
import { registerStatus } from './commands/status.js';

export function buildProgram(): Command {
  const program = new Command('nuwax')
    .description('keeps a docker-compose application on an edge box up to date, and never leaves it broken')
    .version(CLIENT_VERSION)
    .option('--home <dir>', 'home directory (default: $NUWAX_HOME, else the current directory)')
    .option('--config <file>', 'config file (default: <home>/config.toml)')
    .option('--json', 'machine-readable output')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('warn'))
    .showHelpAfterError()
    .exitOverride();

  registerCheck(program);
  registerStatus(program);
  registerHistory(program);
  registerRelease(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
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
