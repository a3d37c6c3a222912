import { spawn } from 'node:child_process';
import { ErrorCodes, NuwaxError } from '../errors/index.js';

export interface CommandOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Bounded capture: a chatty command must not grow our memory. */
const MAX_CAPTURE = 1024 * 1024;

/** Runs a program with an argument list (never a shell string), a timeout and an AbortSignal. */
export function runCommand(command: string, args: string[], options: { cwd?: string; timeoutMs?: number; signal?: AbortSignal; env?: NodeJS.ProcessEnv } = {}): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.timeoutMs ? { timeout: options.timeoutMs, killSignal: 'SIGKILL' as const } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (stdout.length < MAX_CAPTURE) stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-MAX_CAPTURE);
    });
    child.on('error', (error) => {
      if (error.name === 'AbortError') reject(new NuwaxError(ErrorCodes.E_ABORTED, `${command} was cancelled`, { cause: error }));
      else reject(new NuwaxError(ErrorCodes.E_DOCKER, `Cannot run ${command}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      if (code === null && signal) {
        reject(new NuwaxError(ErrorCodes.E_TIMEOUT, `${command} ${args.slice(0, 3).join(' ')} did not finish in time (killed by ${signal})`, { details: { stderr: stderr.slice(-2000) } }));
        return;
      }
      resolve({ code, stdout, stderr });
    });
  });
}

export async function dockerAvailable(): Promise<boolean> {
  try {
    return (await runCommand('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 15_000 })).code === 0;
  } catch {
    return false;
  }
}

export interface ComposeCommand {
  command: string;
  args: string[];
  version: 'v2' | 'v1';
}

let detected: ComposeCommand | undefined;

/** `docker compose` (v2) when present, else `docker-compose` (v1): Debian ships only v1 here. */
export async function detectCompose(signal?: AbortSignal): Promise<ComposeCommand> {
  if (detected) return detected;
  const v2 = await runCommand('docker', ['compose', 'version'], { timeoutMs: 15_000, ...(signal ? { signal } : {}) }).catch(() => null);
  if (v2?.code === 0) {
    detected = { command: 'docker', args: ['compose'], version: 'v2' };
    return detected;
  }
  const v1 = await runCommand('docker-compose', ['version'], { timeoutMs: 15_000, ...(signal ? { signal } : {}) }).catch(() => null);
  if (v1?.code === 0) {
    detected = { command: 'docker-compose', args: [], version: 'v1' };
    return detected;
  }
  throw new NuwaxError(ErrorCodes.E_COMPOSE, 'Neither `docker compose` (v2) nor `docker-compose` (v1) is available');
}
