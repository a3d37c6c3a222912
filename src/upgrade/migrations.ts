import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { compareVersions, isValidVersion } from '../versions/index.js';

/** Bounded output kept per script, for the journal and the diagnosis. */
const MAX_OUTPUT = 16 * 1024;

export interface MigrationScript {
  version: string;
  up: string;
  down: string | null;
}

/**
 * SPEC 8: `up-<v>.sh` for every v with current < v ≤ target not yet executed, in version order.
 * Pure apart from listing the folder.
 */
export async function pendingMigrations(
  dockerDir: string,
  from: string | null,
  to: string,
  executed: string[],
): Promise<MigrationScript[]> {
  const folder = path.join(dockerDir, 'migrations');
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const done = new Set(executed);
  return names
    .map((name) => /^up-(.+)\.sh$/.exec(name))
    .filter((match): match is RegExpExecArray => match !== null && isValidVersion(match[1]!))
    .map((match) => ({ version: match[1]!, up: match[0] }))
    .filter(
      ({ version, up }) =>
        (from === null || compareVersions(version, from) > 0) && compareVersions(version, to) <= 0 && !done.has(up),
    )
    .sort((a, b) => compareVersions(a.version, b.version))
    .map(({ version, up }) => ({
      version,
      up,
      down: names.includes(`down-${version}.sh`) ? `down-${version}.sh` : null,
    }));
}

export interface ScriptRun {
  script: string;
  code: number | null;
  ms: number;
  output: string;
}

/** Runs one script with `sh` (argument list, no shell string), cwd docker/, a timeout and the versions in env. */
export function runScript(
  dockerDir: string,
  script: string,
  options: { from: string | null; to: string; timeoutMs: number; signal?: AbortSignal },
): Promise<ScriptRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('sh', [path.join('migrations', script)], {
      cwd: dockerDir,
      env: { ...process.env, NUWAX_FROM_VERSION: options.from ?? '', NUWAX_TO_VERSION: options.to },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own session, as compose's (runtime/exec.ts): Ctrl-C reaches nuwax, not the script.
      detached: process.platform !== 'win32',
      signal: options.signal,
      timeout: options.timeoutMs,
      killSignal: 'SIGKILL',
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-MAX_OUTPUT);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (error) => {
      if ((error as Error).name === 'AbortError')
        reject(new NuwaxError(ErrorCodes.E_ABORTED, `Migration ${script} was cancelled`, { cause: error }));
      else
        reject(
          new NuwaxError(ErrorCodes.E_MIGRATION, `Cannot run migration ${script}: ${error.message}`, { cause: error }),
        );
    });
    child.on('close', (code, signal) => {
      const ms = Date.now() - started;
      if (signal && ms >= options.timeoutMs) {
        reject(
          new NuwaxError(
            ErrorCodes.E_TIMEOUT,
            `Migration ${script} did not finish within ${Math.round(options.timeoutMs / 1000)} s`,
            { details: { script, output } },
          ),
        );
        return;
      }
      resolve({ script, code, ms, output });
    });
  });
}
