import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ErrorCodes, isNuwaxError, NuwaxError } from '../errors/index.js';

export interface CommandOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  /** Bytes kept of each stream; a chatty command must not grow our memory. */
  maxCapture?: number;
}

const MAX_CAPTURE = 1024 * 1024;

/** Keeps the first `limit` characters of stdout (JSON we parse) and the last `limit` of stderr (where the error is). */
function capture(limit: number, keep: 'head' | 'tail'): { add(chunk: Buffer): void; text(): string } {
  let text = '';
  return {
    add(chunk) {
      if (keep === 'head') {
        if (text.length < limit) text += chunk.toString('utf8');
      } else {
        text = (text + chunk.toString('utf8')).slice(-limit);
      }
    },
    text: () => (keep === 'head' ? text.slice(0, limit) : text),
  };
}

/**
 * The one way this module runs a program: an argument list (never a shell string), a timeout and an
 * AbortSignal that both kill the child, and output captured within bounds. A non-zero exit is not an
 * error here: callers decide what a failure means and which code it gets.
 */
export function runCommand(command: string, args: string[], options: RunOptions = {}): Promise<CommandOutput> {
  const label = `${command} ${args.slice(0, 3).join(' ')}`.trim();
  if (options.signal?.aborted)
    return Promise.reject(
      new NuwaxError(ErrorCodes.E_ABORTED, `${label} was cancelled`, { cause: options.signal.reason }),
    );
  return new Promise((resolve, reject) => {
    // A session of its own: Ctrl-C in the terminal (SIGINT to the foreground group) or a closed
    // terminal (SIGHUP) must reach nuwax alone, which then finishes or rolls back the switch, and
    // not kill `docker compose` half way through it. nuwax stops its children itself (abort, timeout).
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: process.platform !== 'win32',
    });
    const limit = options.maxCapture ?? MAX_CAPTURE;
    const stdout = capture(limit, 'head');
    const stderr = capture(limit, 'tail');
    let stopped: NuwaxError | undefined;
    const stop = (error: NuwaxError): void => {
      if (stopped) return;
      stopped = error;
      child.kill('SIGKILL');
    };
    const timer = options.timeoutMs
      ? setTimeout(
          () =>
            stop(
              new NuwaxError(
                ErrorCodes.E_TIMEOUT,
                `${label} did not finish within ${Math.round(options.timeoutMs! / 1000)} s and was killed`,
              ),
            ),
          options.timeoutMs,
        )
      : undefined;
    const onAbort = (): void =>
      stop(new NuwaxError(ErrorCodes.E_ABORTED, `${label} was cancelled`, { cause: options.signal?.reason }));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const settle = (): void => {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    child.stdout.on('data', (chunk: Buffer) => stdout.add(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.add(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      settle();
      // spawn says ENOENT both for a missing program and for a missing working directory.
      const noCwd = error.code === 'ENOENT' && options.cwd !== undefined && !existsSync(options.cwd);
      const hint = noCwd
        ? ` (its working directory ${options.cwd} does not exist)`
        : error.code === 'ENOENT'
          ? ' (not installed or not on PATH)'
          : '';
      reject(new NuwaxError(ErrorCodes.E_DOCKER, `Cannot run ${command}${hint}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code) => {
      settle();
      if (stopped) {
        reject(
          new NuwaxError(stopped.code, stopped.message, {
            cause: stopped.cause,
            details: { stderr: stderr.text().slice(-2000) },
          }),
        );
        return;
      }
      resolve({ code, stdout: stdout.text(), stderr: stderr.text() });
    });
  });
}

/**
 * For `.catch(...)` on a runCommand whose answer is optional: a program that cannot be started
 * (E_DOCKER) or that overran its timeout (E_TIMEOUT) gives null; anything else is rethrown.
 */
export function noOutput(error: unknown): null {
  if (isNuwaxError(error, ErrorCodes.E_DOCKER) || isNuwaxError(error, ErrorCodes.E_TIMEOUT)) return null;
  throw error;
}

/** True when a Docker engine answers (`docker info`), within 15 s. */
export async function dockerAvailable(env?: NodeJS.ProcessEnv): Promise<boolean> {
  const output = await runCommand('docker', ['info', '--format', '{{.ServerVersion}}'], {
    timeoutMs: 15_000,
    env,
  }).catch(noOutput);
  return output?.code === 0 && output.stdout.trim() !== '';
}

export interface ComposeCommand {
  command: string;
  args: string[];
  version: 'v2' | 'v1';
}

const detected = new Map<string, ComposeCommand>();
/** What the detected compose said its version was, per PATH (doctor shows it). */
const reported = new Map<string, string>();

/** The version `detectCompose` saw compose report (`2.29.1`, `1.29.2`), once it ran with this PATH. */
export function composeVersion(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return reported.get(env.PATH ?? '');
}

/**
 * `docker compose` (v2) when present, else `docker-compose` (v1): Debian 12 ships only v1. The result
 * is cached per PATH, since a box does not change its compose while nuwax runs.
 */
export async function detectCompose(
  signal?: AbortSignal,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ComposeCommand> {
  const key = env.PATH ?? '';
  const cached = detected.get(key);
  if (cached) return cached;
  const options = { timeoutMs: 15_000, env, signal };
  const candidates: ComposeCommand[] = [
    { command: 'docker', args: ['compose'], version: 'v2' },
    { command: 'docker-compose', args: [], version: 'v1' },
  ];
  for (const candidate of candidates) {
    const output = await runCommand(candidate.command, [...candidate.args, 'version'], options).catch(
      (error: unknown) => {
        if ((error as NuwaxError).code === ErrorCodes.E_ABORTED) throw error;
        return null;
      },
    );
    if (output?.code === 0) {
      const version = /version v?(\d[\w.+-]*)/i.exec(output.stdout)?.[1];
      if (version) reported.set(key, version);
      detected.set(key, candidate);
      return candidate;
    }
  }
  throw new NuwaxError(
    ErrorCodes.E_COMPOSE,
    'Neither `docker compose` (v2) nor `docker-compose` (v1) is available: install one of them',
  );
}
