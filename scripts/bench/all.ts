/** `npm run bench`: every benchmark in turn, each printing ratios against a standard tool. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

for (const name of ['status', 'download', 'backup', 'apply', 'fleet', 'image-delta']) {
  const script = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  if (!existsSync(script)) continue;
  console.log(`\n== ${name} ==`);
  const result = spawnSync(process.execPath, [script], { stdio: 'inherit' });
  if (result.status !== 0) process.exitCode = 1;
}
