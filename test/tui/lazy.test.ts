import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';

// A resolve hook that fails any import of ink or React: importing a module under it proves that
// module does not load them (issue 7: `nuwax status` must not pay for the TUI).
const HOOK = `export async function resolve(specifier, context, next) {
  if (specifier === 'ink' || specifier === 'react' || specifier.startsWith('react/')) throw new Error('loaded ' + specifier);
  return next(specifier, context);
}`;

function importsCleanly(relative: string): { ok: boolean; stderr: string } {
  const target = new URL(relative, import.meta.url).href;
  const script = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOK)}));
await import(${JSON.stringify(target)});`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { ok: child.status === 0, stderr: child.stderr };
}

describe('the TUI is loaded lazily', () => {
  test('importing the tui index loads neither ink nor React', () => {
    const outcome = importsCleanly('../../src/tui/index.js');
    assert.ok(outcome.ok, outcome.stderr);
  });

  test('the plain and JSON renderers load neither ink nor React', () => {
    for (const module of ['../../src/cli/render/plain.js', '../../src/cli/render/json.js']) {
      const outcome = importsCleanly(module);
      assert.ok(outcome.ok, `${module}: ${outcome.stderr}`);
    }
  });

  test('the app module does load ink (the check above can fail)', () => {
    const outcome = importsCleanly('../../src/tui/app.js');
    assert.equal(outcome.ok, false);
    assert.match(outcome.stderr, /loaded (ink|react)/);
  });
});
