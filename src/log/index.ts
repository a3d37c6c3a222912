import { type DestinationStream, pino, type Logger } from 'pino';

export type { Logger };
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface LoggerOptions {
  /**
   * For a person (a command without --json, not the daemon): each record is one line
   * `nuwax: warning: <msg>: <code>: <error message>`, without the JSON or a stack trace. At debug and
   * trace the records stay NDJSON, stacks included, for whoever asked for them.
   */
  human?: boolean;
}

const LABELS: Record<number, string> = {
  10: 'trace: ',
  20: 'debug: ',
  30: '',
  40: 'warning: ',
  50: 'error: ',
  60: 'fatal: ',
};

interface Record_ {
  level?: number;
  msg?: string;
  err?: { code?: unknown; message?: unknown };
}

/** One pino record as one line for a person; an error adds its code and the first line of its message. */
export function humanLine(json: string): string {
  let record: Record_;
  try {
    record = JSON.parse(json) as Record_;
  } catch {
    return json.trimEnd();
  }
  const message = String(record.msg ?? '');
  let line = `nuwax: ${LABELS[record.level ?? 30] ?? ''}${message}`;
  const err = record.err;
  if (err) {
    const code = typeof err.code === 'string' ? err.code : '';
    const text = String(err.message ?? '').split('\n')[0] ?? '';
    // fs errors already start with their code (`EEXIST: file already exists, ...`).
    const parts = text.startsWith(code) ? [text] : [code, text];
    const detail = parts.filter((part) => part !== '' && !message.includes(part)).join(': ');
    if (detail !== '') line += `: ${detail}`;
  }
  return line;
}

function humanStream(fd: number): DestinationStream {
  const target = pino.destination({ fd, sync: true });
  return { write: (json: string) => target.write(`${humanLine(json)}\n`) };
}

/**
 * Structured logs go to stderr (stdout is for results and --json events), and optionally to a file
 * under `logs/`. pino writes synchronously to file descriptors, so nothing is lost at exit.
 */
export function createLogger(level: LogLevel = 'warn', file?: string, options: LoggerOptions = {}): Logger {
  const human = options.human === true && level !== 'debug' && level !== 'trace';
  const stderr = human ? humanStream(2) : pino.destination({ fd: 2, sync: true });
  if (!file) return pino({ level, base: undefined }, stderr);
  const streams = [
    { level, stream: stderr },
    { level: 'debug' as const, stream: pino.destination({ dest: file, mkdir: true, sync: true }) },
  ];
  return pino({ level: 'debug', base: undefined }, pino.multistream(streams));
}

export const silentLogger: Logger = pino({ level: 'silent' });
