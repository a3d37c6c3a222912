import { pino, type Logger } from 'pino';

export type { Logger };
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/**
 * Structured logs go to stderr (stdout is for results and --json events), and optionally to a file
 * under `logs/`. pino writes synchronously to file descriptors, so nothing is lost at exit.
 */
export function createLogger(level: LogLevel = 'warn', file?: string): Logger {
  if (!file) return pino({ level, base: undefined }, pino.destination({ fd: 2, sync: true }));
  const streams = [
    { level, stream: pino.destination({ fd: 2, sync: true }) },
    { level: 'debug' as const, stream: pino.destination({ dest: file, mkdir: true, sync: true }) },
  ];
  return pino({ level: 'debug', base: undefined }, pino.multistream(streams));
}

export const silentLogger: Logger = pino({ level: 'silent' });
