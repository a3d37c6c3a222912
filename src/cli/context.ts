import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { type Config, type HomePaths, homePaths, loadConfig, resolveHome } from '../config/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { createLogger, type Logger, type LogLevel } from '../log/index.js';
import { openStore, type Store } from '../state/index.js';
import { commandPath, globalOptions, isDaemon, isUsage, reportError } from './options.js';

export { commandPath, type GlobalOptions, globalOptions, reportError } from './options.js';

/** What every command gets: the home, its config, the store (opened on first use), a logger, output. */
export class CliContext {
  private openedStore: Store | undefined;

  constructor(
    readonly home: string,
    readonly config: Config,
    readonly configFile: string | undefined,
    readonly paths: HomePaths,
    readonly json: boolean,
    readonly logger: Logger,
    readonly logLevel: LogLevel,
  ) {}

  get store(): Store {
    this.openedStore ??= openStore(this.paths.dbFile);
    return this.openedStore;
  }

  /** stdout carries results: JSON with --json, else the human lines. */
  print(human: string | string[], json: unknown): void {
    if (this.json) process.stdout.write(`${JSON.stringify(json)}\n`);
    else process.stdout.write(`${Array.isArray(human) ? human.join('\n') : human}\n`);
  }

  close(): void {
    this.openedStore?.close();
  }
}
const READ_ONLY = new Set(['status', 'check', 'history', 'doctor', 'backup list']);

/**
 * A read-only command pointed at the wrong folder must say so, not report an empty box (and create
 * `data/` there): the home and the config file must exist.
 */
async function requireConfiguredHome(home: string, configFile: string | undefined): Promise<void> {
  const file = configFile ? path.resolve(configFile) : path.join(home, 'config.toml');
  const missing = async (target: string) => {
    try {
      await stat(target);
      return false;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw new NuwaxError(ErrorCodes.E_CONFIG, `Cannot read ${target}: ${(error as Error).message}`, { cause: error });
    }
  };
  const where = '(the home is --home, else $NUWAX_HOME, else the current directory)';
  if (await missing(home))
    throw new NuwaxError(ErrorCodes.E_CONFIG, `The home ${home} does not exist (looked for ${file}) ${where}`, {
      details: { home, config: file },
    });
  if (await missing(file))
    throw new NuwaxError(ErrorCodes.E_CONFIG, `No config file in the home ${home}: ${file} does not exist ${where}`, {
      details: { home, config: file },
    });
}

export async function createContext(command: Command): Promise<CliContext> {
  const options = globalOptions(command);
  const home = resolveHome(options.home);
  const level = options.logLevel ?? 'warn';
  if (READ_ONLY.has(commandPath(command))) await requireConfiguredHome(home, options.config);
  const { config, file } = await loadConfig(home, options.config);
  const paths = homePaths(home, config, file);
  const logger = createLogger(level, undefined, { human: !options.json && !isDaemon(command) });
  return new CliContext(home, config, file, paths, options.json === true, logger, level);
}

/** The process exit code a command asks for, without being an error (SPEC 8 exit codes). */
export class ExitCode {
  constructor(readonly code: number) {}
}

/**
 * Wraps a command action: builds the context, runs, closes, and turns errors into one line (or a
 * JSON result with --json) and exit code 1; a stack trace only at --log-level debug.
 */
export function action<A extends unknown[]>(run: (context: CliContext, ...args: A) => Promise<unknown>) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args[args.length - 1] as Command;
    const options = globalOptions(command);
    let context: CliContext | undefined;
    try {
      context = await createContext(command);
      const code = await run(context, ...(args.slice(0, -1) as A));
      process.exitCode = typeof code === 'number' ? code : 0;
    } catch (error) {
      reportError(error, options, undefined, isDaemon(command) ? (context?.logger ?? createLogger()) : undefined);
      process.exitCode = isUsage(error) ? 2 : 1;
    } finally {
      context?.close();
    }
  };
}

/** Who started an upgrade, for its record; a container without a passwd entry has only a uid. */
export function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch (error) {
    // os.userInfo fails with ERR_SYSTEM_ERROR when the uid has no passwd entry.
    if ((error as NodeJS.ErrnoException).code !== 'ERR_SYSTEM_ERROR') throw error;
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}
