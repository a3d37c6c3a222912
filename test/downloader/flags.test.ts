import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const downloader = fileURLToPath(new URL('../../src/downloader/index.js', import.meta.url));
const runtime = fileURLToPath(new URL('../../src/downloader/runtime.js', import.meta.url));

describe('downloader: process-wide V8 flags are the CLI entry’s business', () => {
  test('importing the downloader and collecting socket garbage exposes no gc to the process', () => {
    const script =
      `await import(${JSON.stringify(downloader)});` +
      `const { collectSocketGarbage } = await import(${JSON.stringify(runtime)});` +
      "collectSocketGarbage(); const vm = await import('node:vm');" +
      "process.stdout.write(vm.runInNewContext('typeof gc'));";
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(output, 'undefined');
  });
});
