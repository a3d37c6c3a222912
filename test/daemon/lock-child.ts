// A second process for the lock tests: tries acquireLock(file, command) from the compiled tree and
// prints one JSON line; with "hold" it keeps the lock until stdin closes (or it is killed).
import { acquireLock } from '../../src/daemon/index.js';

const [file, command, mode] = process.argv.slice(2) as [string, string, string | undefined];
try {
  const lock = await acquireLock(file, command);
  process.stdout.write(`${JSON.stringify({ ok: true, pid: process.pid })}\n`);
  if (mode === 'hold') {
    process.stdin.resume();
    await new Promise((resolve) => process.stdin.on('end', resolve));
  }
  await lock.release();
} catch (error) {
  const { code, message } = error as { code?: string; message: string };
  process.stdout.write(`${JSON.stringify({ ok: false, code, message })}\n`);
  process.exitCode = 1;
}
