/**
 * The nuwax program with the publisher commands registered as src/cli/main.ts does, so the
 * release pack/patch and serve commands run end to end in a child process (real `action`,
 * real exit codes) whether or not main has registered them yet.
 */
import { Command, CommanderError, Option } from 'commander';
import { registerRelease } from '../../src/cli/commands/release.js';
import { registerReleasePackage } from '../../src/cli/commands/release-package.js';
import { registerServe } from '../../src/cli/commands/serve.js';

const program = new Command('nuwax')
  .option('--home <dir>')
  .option('--config <file>')
  .option('--json')
  .addOption(new Option('--log-level <level>').default('warn'))
  .exitOverride();
registerReleasePackage(registerRelease(program));
registerServe(program);
try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (!(error instanceof CommanderError)) throw error;
  process.exitCode = error.exitCode === 0 ? 0 : 2;
}
