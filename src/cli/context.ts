import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
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

const GLOBAL_KEYS = ['home', 'config', 'json', 'logLevel'] as const;

/**
 * The global options wherever they were given: each command defines them too, and the one nearest
 * the command wins (`nuwax --json status --home /opt/app`). commander's optsWithGlobals lets the
 * program's value win instead, which would ignore what comes after the command.
 */
export function globalOptions(command: Command): GlobalOptions {
  const chain: Command[] = [];
  for (let current: Command | null = command; current; current = current.parent) chain.unshift(current);
  const merged: Record<string, unknown> = {};
  for (const item of chain) {
    const options = item.opts();
    for (const key of GLOBAL_KEYS) if (options[key] !== undefined) merged[key] = options[key];
  }
  return merged as GlobalOptions;
}

/** Commands that only read: they never create a home, and a home without config.toml is an error. */
const READ_ONLY = new Set(['status', 'check', 'history', 'doctor', 'backup list']);

/** `backup list` for the list subcommand of backup; the program's own name left out. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let current: Command | null = command; current?.parent; current = current.parent) names.unshift(current.name());
  return names.join(' ');
}

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

/** The daemon's stderr is its log: NDJSON only, for journald and log shippers (README). */
function isDaemon(command: Command): boolean {
  return commandPath(command) === 'daemon';
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

function isUsage(error: unknown): boolean {
  return error instanceof NuwaxError && error.code === ErrorCodes.E_USAGE;
}

/** With `log` (the daemon), stderr gets the error as one NDJSON record instead of a line for a person. */
export function reportError(error: unknown, options: GlobalOptions, step?: string, log?: Logger): void {
  const nuwaxError = toNuwaxError(error);
  if (options.json) {
    const result: Record<string, unknown> = { status: 'failed', error: nuwaxError.toJSON(), changed: false };
    if (step) result.step = step;
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  if (log) {
    log.error({ err: error, code: nuwaxError.code }, `${nuwaxError.code}: ${nuwaxError.message}`);
    return;
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
