import os from 'node:os';
import type { Command } from 'commander';
import { type Config, type HomePaths, homePaths, loadConfig, resolveHome } from '../config/index.js';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import { createLogger, type Logger, type LogLevel } from '../log/index.js';
import { openStore, type Store } from '../state/index.js';

export interface GlobalOptions {
  home?: string;
  config?: string;
  json?: boolean;
  logLevel?: LogLevel;
}

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

export function globalOptions(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

export async function createContext(command: Command): Promise<CliContext> {
  const options = globalOptions(command);
  const home = resolveHome(options.home);
  const level = options.logLevel ?? 'warn';
  const { config, file } = await loadConfig(home, options.config);
  const paths = homePaths(home, config, file);
  return new CliContext(home, config, file, paths, options.json === true, createLogger(level), level);
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
      reportError(error, options);
      process.exitCode = isUsage(error) ? 2 : 1;
    } finally {
      context?.close();
    }
  };
}

function isUsage(error: unknown): boolean {
  return error instanceof NuwaxError && error.code === ErrorCodes.E_USAGE;
}

export function reportError(error: unknown, options: GlobalOptions, step?: string): void {
  const nuwaxError = toNuwaxError(error);
  if (options.json) {
    const result: Record<string, unknown> = { status: 'failed', error: nuwaxError.toJSON(), changed: false };
    if (step) result.step = step;
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  process.stderr.write(`nuwax: ${nuwaxError.code}: ${nuwaxError.message}\n`);
  if (options.logLevel === 'debug' || options.logLevel === 'trace') {
    process.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`);
    if ((error as Error)?.cause)
      process.stderr.write(
        `caused by: ${((error as Error).cause as Error)?.stack ?? String((error as Error).cause)}\n`,
      );
  }
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
