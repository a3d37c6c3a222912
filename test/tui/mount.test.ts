import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { renderUpgradeTui } from '../../src/tui/index.js';
import { plan, result, stripAnsi, success } from './fixtures.js';

// Stand-ins for a terminal: ink draws into `writes` and reads keys from `write()`. A real TTY is
// not available to a test run; these are the same shapes ink-testing-library uses.
class FakeStdout extends EventEmitter {
  readonly isTTY = true;
  readonly columns = 100;
  readonly rows = 40;
  readonly writes: string[] = [];
  write = (chunk: string) => {
    this.writes.push(chunk);
    return true;
  };
  output(): string {
    return stripAnsi(this.writes.join(''));
  }
}

class FakeStdin extends EventEmitter {
  readonly isTTY = true;
  private data: string | null = null;
  write(data: string) {
    this.data = data;
    this.emit('readable');
    this.emit('data', data);
  }
  read = () => {
    const { data } = this;
    this.data = null;
    return data;
  };
  setEncoding() {}
  setRawMode() {}
  resume() {}
  pause() {}
  ref() {}
  unref() {}
}

function terminal() {
  const stdout = new FakeStdout();
  const stdin = new FakeStdin();
  return {
    stdout,
    stdin,
    streams: {
      stdout: stdout as unknown as NodeJS.WriteStream,
      stdin: stdin as unknown as NodeJS.ReadStream,
      stderr: new FakeStdout() as unknown as NodeJS.WriteStream,
    },
  };
}

describe('renderUpgradeTui', () => {
  test('draws the run, exits by itself after the result, and waitUntilExit resolves', async () => {
    const { stdout, streams } = terminal();
    const tui = await renderUpgradeTui({ onCancel: () => undefined, animate: false, ...streams });
    tui.listener(plan);
    tui.listener({ type: 'step', step: 'downloading', status: 'done', ms: 1500 });
    tui.listener(result(success));
    await tui.waitUntilExit();
    const output = stdout.output();
    assert.match(output, /nuwax upgrade 1\.4\.0\.1 → 1\.4\.0\.2/);
    assert.match(output, /✔ Download 1\.5s/);
    assert.match(output, /Upgraded to 1\.4\.0\.2/);
    tui.unmount(); // safe after the exit
  });

  test('the running step spins and shows its elapsed time', async () => {
    const { stdout, streams } = terminal();
    const tui = await renderUpgradeTui({ onCancel: () => undefined, ...streams });
    tui.listener({ type: 'step', step: 'downloading', status: 'running' });
    await delay(350);
    tui.unmount();
    await tui.waitUntilExit();
    const spinners = new Set(stdout.output().match(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏](?= Download)/g));
    assert.ok(spinners.size >= 2, `frames: ${[...spinners].join(' ')}`);
    assert.match(stdout.output(), /Download \d+\.\ds/);
  });

  test('Ctrl-C in the terminal calls onCancel and a cancel from a signal shows the same', async () => {
    const { stdout, stdin, streams } = terminal();
    let cancels = 0;
    const tui = await renderUpgradeTui({ onCancel: () => cancels++, animate: false, ...streams });
    tui.listener({ type: 'step', step: 'downloading', status: 'running' });
    await delay(20);
    stdin.write('\u0003');
    tui.cancel();
    await delay(50);
    assert.equal(cancels, 1);
    assert.match(stdout.output(), /Cancelling safely…/);
    tui.unmount();
    await tui.waitUntilExit();
  });

  test('unmount lets go of the terminal when no result will come', async () => {
    const { streams } = terminal();
    const tui = await renderUpgradeTui({ onCancel: () => undefined, animate: false, ...streams });
    tui.listener({ type: 'step', step: 'checking', status: 'running' });
    tui.unmount();
    await tui.waitUntilExit();
  });
});
