import { spawn } from 'node:child_process';
import path from 'node:path';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { exists } from '../fsutil/index.js';

/**
 * SPEC 8 hooks: `./backup.sh --format=json` → {"file": "…"}; `./restore.sh --file="…"
 * --format=json` → {"success": true}; a failure prints {"success": false, "error": "…"} and exits
 * non-zero. Run with `sh` and an argument list, cwd docker/.
 */
export async function runHook(dockerDir: string, script: 'backup.sh' | 'restore.sh', args: string[], timeoutMs = 3_600_000): Promise<Record<string, unknown> | null> {
  if (!(await exists(path.join(dockerDir, script)))) return null;
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('sh', [`./${script}`, ...args, '--format=json'], { cwd: dockerDir, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out = (out + chunk.toString()).slice(-65536);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err = (err + chunk.toString()).slice(-65536);
    });
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }));
  });
  const lastJson = stdout.trim().split('\n').reverse().find((line) => line.trim().startsWith('{'));
  let parsed: Record<string, unknown> = {};
  try {
    parsed = lastJson ? (JSON.parse(lastJson) as Record<string, unknown>) : {};
  } catch {
    parsed = {};
  }
  if (code !== 0 || parsed.success === false) {
    const why = typeof parsed.error === 'string' ? parsed.error : stderr.trim().split('\n').pop() || `exit code ${code}`;
    throw new NuwaxError(ErrorCodes.E_BACKUP, `docker/${script} failed: ${why}`, { details: { script, code, output: stdout.slice(-2000) } });
  }
  return parsed;
}
