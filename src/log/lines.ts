import type { LogLevel } from './index.js';

/*
 * The same NDJSON records as pino's (level, time, the fields, msg; errors as pino's serializer
 * writes them), for the daemon's waiting parent, which must not hold pino and its streams: it
 * writes a few lines a day. Imported by its path, not through the index, which loads pino.
 */

/** The part of a logger the daemon's parent uses; pino's Logger has it too. */
export interface LineLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

const LEVELS: Record<LogLevel, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
};

function isErrorLike(value: unknown): value is Error {
  return typeof value === 'object' && value !== null && typeof (value as Error).message === 'string';
}

/** pino-std-serializers' err: type, message and stack with their causes, and the error's own fields. */
export function serializeError(error: unknown, seen = new Set<unknown>()): unknown {
  if (!isErrorLike(error) || seen.has(error)) return error;
  seen.add(error);
  const causes: Error[] = [];
  for (let cause = error.cause; isErrorLike(cause) && !causes.includes(cause); cause = cause.cause) causes.push(cause);
  const result: Record<string, unknown> = {
    type: error.constructor?.name ?? error.name,
    message: [error.message, ...causes.map((cause) => cause.message)].join(': '),
    stack: [error.stack ?? '', ...causes.map((cause) => cause.stack ?? '')].join('\ncaused by: '),
  };
  for (const key in error) {
    if (result[key] !== undefined || key === 'cause') continue;
    const value = (error as unknown as Record<string, unknown>)[key];
    result[key] = isErrorLike(value) ? serializeError(value, seen) : value;
  }
  return result;
}

/** Records at `level` and above to stderr, synchronously (nothing is lost at exit). */
export function createLineLogger(
  level: LogLevel = 'warn',
  write: (line: string) => unknown = (line) => process.stderr.write(line),
) {
  const threshold = LEVELS[level];
  const at =
    (value: number) =>
    (fields: object, message: string): void => {
      if (value < threshold) return;
      const record: Record<string, unknown> = { level: value, time: Date.now() };
      for (const [key, field] of Object.entries(fields)) record[key] = key === 'err' ? serializeError(field) : field;
      record.msg = message;
      write(`${JSON.stringify(record)}\n`);
    };
  const logger: LineLogger = { debug: at(20), info: at(30), warn: at(40), error: at(50) };
  return logger;
}
