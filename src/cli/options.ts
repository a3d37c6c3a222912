import type { Command } from 'commander';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import type { LogLevel } from '../log/index.js';
import type { LineLogger } from '../log/lines.js';

/*
 * The global options and the error report, apart from context.ts: the idle daemon parses its
 * command line and reports a start-up error without loading the config schema or the store.
 */

export interface GlobalOptions {
  home?: string;
  config?: string;
  json?: boolean;
  logLevel?: LogLevel;
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

/** `backup list` for the list subcommand of backup; the program's own name left out. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let current: Command | null = command; current?.parent; current = current.parent) names.unshift(current.name());
  return names.join(' ');
}

/** The daemon's stderr is its log: NDJSON only, for journald and log shippers (README). */
export function isDaemon(command: Command): boolean {
  return commandPath(command) === 'daemon';
}

export function isUsage(error: unknown): boolean {
  return error instanceof NuwaxError && error.code === ErrorCodes.E_USAGE;
}

/** With `log` (the daemon), stderr gets the error as one NDJSON record instead of a line for a person. */
export function reportError(error: unknown, options: GlobalOptions, step?: string, log?: LineLogger): void {
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
