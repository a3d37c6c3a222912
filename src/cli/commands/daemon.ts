import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Command, Option } from 'commander';
// Not the folder's index: it loads the upgrade machinery, which the waiting daemon must not hold.
import { type ChildRole, superviseDaemon } from '../../daemon/supervisor.js';
// Not pino: the waiting daemon writes the same records without holding it.
import { createLineLogger } from '../../log/lines.js';
import { globalOptions, isUsage, reportError } from '../options.js';

interface DaemonCommandFlags {
  once?: boolean;
  jitter?: boolean;
  child?: ChildRole;
}

/** This program's entry, as the running code sees it: a child runs the same client as its daemon. */
const ENTRY = fileURLToPath(new URL('../main.js', import.meta.url));

/** `nuwax daemon [--once]` (SPEC 10): scheduled, windowed, one instance per home, SIGTERM-safe. */
export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description('check on a schedule; upgrade inside the maintenance window, pre-stage outside it')
    .option('--once', 'run one cycle and exit with its result (for system cron and tests)')
    .option(
      '--jitter',
      'with --once: wait the random [schedule] jitter first, as the daemon does (use it from system cron)',
    )
    .addOption(
      new Option('--child <role>', "one piece of a running daemon's work, in a process of its own")
        .choices(['start', 'cycle', 'watch'])
        .hideHelp(),
    )
    .action(async (flags: DaemonCommandFlags, command: Command) => {
      if (flags.child) {
        const { runDaemonChild } = await import('./daemon-child.js');
        return runDaemonChild(command, flags.child);
      }
      if (flags.once) {
        const [{ action }, { runDaemonOnce }] = await Promise.all([
          import('../context.js'),
          import('./daemon-work.js'),
        ]);
        return action(runDaemonOnce)(flags, command);
      }
      return runDaemon(command);
    });
}

/**
 * The daemon that waits: only the schedule and the lock stay in this process; the work runs in
 * children of the same program (`daemon --child ROLE`), which print to this process's stdout and stderr.
 */
async function runDaemon(command: Command): Promise<void> {
  const options = globalOptions(command);
  // The daemon's stderr is its log: NDJSON, as the children's.
  const logger = createLineLogger(options.logLevel ?? 'warn');
  const args = process.argv.slice(2);
  try {
    process.exitCode = await superviseDaemon({
      logger,
      spawnChild: (role) => fork(ENTRY, [...args, '--child', role], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
    });
  } catch (error) {
    reportError(error, options, undefined, logger);
    process.exitCode = isUsage(error) ? 2 : 1;
  }
}
