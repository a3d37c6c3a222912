import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import { exists } from '../fsutil/index.js';

export type HookScript = 'backup.sh' | 'restore.sh' | 'traffic.sh';

const OUTPUT_LIMIT = 65_536;

/** The last line of stdout that parses as a JSON object, or {}. */
function lastJsonObject(stdout: string): Record<string, unknown> {
  for (const line of stdout.trim().split('\n').reverse()) {
    if (!line.trim().startsWith('{')) continue;
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    } catch (error) {
      // A line that only looks like JSON: keep looking at earlier lines.
      if (!(error instanceof SyntaxError)) throw error;
    }
  }
  return {};
}

/**
 * SPEC 8 hooks, nuwax-cli's contract: `./backup.sh --format=json` prints {"file": "…"};
 * `./restore.sh --file=… --format=json` prints {"success": true}; a failure prints
 * {"success": false, "error": "…"} and exits non-zero. Run with an argument list (no shell string),
 * cwd docker/; an executable script runs through its shebang, another through `sh`.
 * Returns null when the script does not exist.
 */
export async function runHook(
  dockerDir: string,
  script: HookScript,
  args: string[],
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<Record<string, unknown> | null> {
  const errorCode = {
    'backup.sh': ErrorCodes.E_BACKUP,
    'restore.sh': ErrorCodes.E_RESTORE,
    'traffic.sh': ErrorCodes.E_TRAFFIC,
  }[script];
  const file = path.join(dockerDir, script);
  if (!(await exists(file))) return null;
  const executable = await access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
  const [command, argv] = executable
    ? [`./${script}`, [...args, '--format=json']]
    : ['sh', [`./${script}`, ...args, '--format=json']];
  const { code, signal, stdout, stderr } = await new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((resolve, reject) => {
    const child = spawn(command, argv, {
      cwd: dockerDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: process.platform !== 'win32',
      timeout: options.timeoutMs ?? 3_600_000,
      killSignal: 'SIGKILL',
      signal: options.signal,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out = (out + chunk.toString()).slice(-OUTPUT_LIMIT);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err = (err + chunk.toString()).slice(-OUTPUT_LIMIT);
    });
    child.on('error', (error) =>
      reject(
        error.name === 'AbortError'
          ? toNuwaxError(error)
          : new NuwaxError(errorCode, `docker/${script} could not run: ${error.message}`, {
              cause: error,
              details: { script },
            }),
      ),
    );
    child.on('close', (exitCode, exitSignal) =>
      resolve({ code: exitCode, signal: exitSignal, stdout: out, stderr: err }),
    );
  });
  const parsed = lastJsonObject(stdout);
  if (code !== 0 || parsed.success === false) {
    const why =
      typeof parsed.error === 'string'
        ? parsed.error
        : stderr.trim().split('\n').pop() || (signal ? `killed by ${signal}` : `exit code ${code}`);
    throw new NuwaxError(errorCode, `docker/${script} failed: ${why}`, {
      details: { script, code, signal, output: stdout.slice(-2000) },
    });
  }
  return parsed;
}
