import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, test } from 'node:test';
import { cleanup, render } from 'ink-testing-library';
import type { UpgradeEvent } from '../../src/events/index.js';
import { UpgradeApp } from '../../src/tui/app.js';
import { createViewStore } from '../../src/tui/view.js';
import {
  cancelled,
  failedRecovered,
  failedUnchanged,
  failedUnrecovered,
  MiB,
  partial,
  plan,
  progress,
  result,
  stripAnsi,
  success,
} from './fixtures.js';

/** Renders the app with still frames; `send` feeds events and waits for ink to redraw. */
function mount(options: { ask?: boolean } = {}) {
  let cancels = 0;
  const store = createViewStore({ onCancel: () => cancels++, ...options });
  const app = render(<UpgradeApp store={store} animate={false} />);
  return {
    store,
    app,
    cancels: () => cancels,
    frame: () => stripAnsi(app.lastFrame() ?? ''),
    async send(...events: UpgradeEvent[]) {
      for (const event of events) store.listener(event);
      await delay(5);
    },
    async type(keys: string) {
      app.stdin.write(keys);
      await delay(5);
    },
  };
}

const checked: UpgradeEvent[] = [
  { type: 'step', step: 'checking', status: 'running' },
  { type: 'step', step: 'checking', status: 'done', ms: 300 },
  plan,
];

afterEach(() => cleanup());

describe('upgrade TUI frames', () => {
  test('before the plan the header says it is checking for a release', async () => {
    const tui = mount();
    await tui.send({ type: 'step', step: 'checking', status: 'running' });
    assert.match(tui.frame(), /nuwax upgrade checking for a release…/);
    assert.match(tui.frame(), /▶ Check for a release/);
  });

  test('the plan header shows versions, strategy, download size and the first three lines of the notes', async () => {
    const tui = mount();
    await tui.send(...checked);
    const frame = tui.frame();
    assert.match(frame, /nuwax upgrade 1\.4\.0\.1 → 1\.4\.0\.2/);
    assert.match(frame, /patch, download 27\.0 MiB/);
    assert.match(frame, /Faster startup\n\s+Fixes the login page\n\s+New dashboard/);
    assert.doesNotMatch(frame, /fourth line/);
    // Every step of SPEC 8 is listed, the ones to come as pending.
    assert.match(frame, /✔ Check for a release 0\.3s/);
    assert.match(frame, /· Download\n/);
    assert.match(frame, /· Clean up/);
    assert.doesNotMatch(frame, /Roll back/);
  });

  test("a patch's header sets its download against the full package's size", async () => {
    const tui = mount();
    await tui.send({ ...plan, size: 6.1 * MiB, fullSize: 1024 * MiB });
    assert.match(tui.frame(), /patch, download 6\.1 MiB instead of 1\.0 GiB/);
    cleanup();
    const full = mount();
    await full.send({ ...plan, strategy: 'full', size: 1024 * MiB, fullSize: 1024 * MiB });
    assert.match(full.frame(), /full, download 1\.0 GiB/);
    assert.doesNotMatch(full.frame(), /instead of/);
  });

  test('a running download shows a progress bar with percent, bytes, speed and ETA', async () => {
    const tui = mount();
    await tui.send(...checked, { type: 'step', step: 'downloading', status: 'running' }, progress(12.15 * MiB));
    const frame = tui.frame();
    assert.match(frame, /▶ Download/);
    assert.match(frame, /█+░+ 45% 12\.2 MiB\/27\.0 MiB 5\.1 MiB\/s ETA 3s/);
    // The bar is 40 cells wide on a 100-column terminal: 18 filled at 45 %.
    assert.match(frame, /\s{4}█{18}░{22} 45%/);
  });

  test('a backup shows bytes and files; an unknown total shows numbers without a bar', async () => {
    const tui = mount();
    await tui.send(
      ...checked,
      { type: 'step', step: 'backing_up', status: 'running' },
      progress(3 * MiB, { step: 'backing_up', total: null, eta: null, files: 120 }),
    );
    assert.match(tui.frame(), /▶ Back up\n\s+3\.0 MiB 5\.1 MiB\/s \(120 files\)/);
    assert.doesNotMatch(tui.frame(), /█/);
  });

  test('finished steps show ✔ with their durations, a skipped step –, a failed one ✖ with the error', async () => {
    const tui = mount();
    await tui.send(
      ...checked,
      { type: 'step', step: 'downloading', status: 'running' },
      progress(27 * MiB),
      { type: 'step', step: 'downloading', status: 'done', ms: 5300 },
      { type: 'step', step: 'verifying', status: 'done', ms: 120 },
      { type: 'step', step: 'backing_up', status: 'skipped', ms: 0, message: '--skip-backup' },
      {
        type: 'step',
        step: 'applying',
        status: 'failed',
        ms: 75_000,
        error: { code: 'E_APPLY', message: 'disk full' },
      },
    );
    const frame = tui.frame();
    assert.match(frame, /✔ Download 5\.3s/);
    assert.match(frame, /✔ Verify 0\.1s/);
    assert.match(frame, /– Back up --skip-backup/);
    assert.match(frame, /✖ Apply files 1m 15s E_APPLY: disk full/);
    assert.doesNotMatch(frame, /█/, 'the progress bar goes with its step');
  });

  test('the confirm prompt asks before the switch; y answers yes', async () => {
    const tui = mount();
    await tui.send(...checked);
    const answer = tui.store.confirm({ from: '1.4.0.1', to: '1.4.0.2', strategy: 'patch' });
    await delay(5);
    assert.match(tui.frame(), /\? Stop services and switch to 1\.4\.0\.2 \(patch\)\? \[y\/N\]/);
    await tui.type('y');
    assert.equal(await answer, true);
    assert.doesNotMatch(tui.frame(), /\[y\/N\]/);
  });

  test('answering n at the prompt says no and that the running version stays', async () => {
    const tui = mount();
    await tui.send(...checked);
    const answer = tui.store.confirm({ from: '1.4.0.1', to: '1.4.0.2', strategy: 'patch' });
    await delay(5);
    await tui.type('x'); // other keys are ignored
    assert.match(tui.frame(), /\[y\/N\]/);
    await tui.type('n');
    assert.equal(await answer, false);
    assert.match(tui.frame(), /Not switched: the running version stays\./);
    assert.equal(tui.cancels(), 0, 'no is an answer, not a cancel');
  });

  test('with --yes the prompt is never shown', async () => {
    const tui = mount({ ask: false });
    await tui.send(...checked);
    assert.equal(await tui.store.confirm({ from: '1.4.0.1', to: '1.4.0.2', strategy: 'patch' }), true);
    assert.doesNotMatch(tui.frame(), /\[y\/N\]/);
  });

  test('a success box shows status, versions, downtime, backup and migrations', async () => {
    const tui = mount();
    await tui.send(...checked, { type: 'step', step: 'downloading', status: 'done', ms: 5300 }, result(success));
    const frame = tui.frame();
    assert.match(frame, /╭─+╮/);
    assert.match(frame, /│ ✔ Upgraded to 1\.4\.0\.2/);
    assert.match(frame, /versions:\s+1\.4\.0\.1 → 1\.4\.0\.2/);
    assert.match(frame, /downtime:\s+8\.2s/);
    assert.match(frame, /backup:\s+#7/);
    assert.match(frame, /migrations:\s+up-1\.4\.0\.2\.sh/);
    assert.doesNotMatch(frame, /· Clean up/, 'steps that will not run leave the list');
  });

  test('a partial_success box names the unhealthy services and the recommendation', async () => {
    const tui = mount();
    await tui.send(...checked, result(partial));
    const frame = tui.frame();
    assert.match(frame, /⚠ Upgraded to 1\.4\.0\.2, but some services are not healthy/);
    assert.match(frame, /unhealthy:\s+metrics \(non-critical\)/);
    assert.match(frame, /healthy:\s+app, db/);
    assert.match(frame, /recommendations:[\s│]*• Check the logs of metrics/);
  });

  test('a failed box shows the error, the diagnosis, the recommendations and the bundle', async () => {
    const tui = mount();
    await tui.send(...checked, result(failedRecovered));
    const frame = tui.frame();
    assert.match(frame, /✖ Failed at health_check; rolled back to 1\.4\.0\.1/);
    assert.match(frame, /error:\s+E_HEALTH: Service app is not healthy after 180s/);
    assert.match(frame, /cause:\s+Service app is not healthy/);
    assert.match(frame, /• app: port 8080 is already in use by another process\./);
    assert.match(frame, /failure bundle:\s+logs\/failures\/12/);
  });

  test('an unrecovered failure says so and numbers the manual steps', async () => {
    const tui = mount();
    await tui.send(...checked, result(failedUnrecovered));
    const frame = tui.frame();
    assert.match(frame, /the rollback did NOT complete/);
    assert.match(frame, /manual steps:[\s│]*1\. Run `nuwax rollback 7`\.[\s│]*2\. Check/);
  });

  test('a failure before anything changed says nothing was changed', async () => {
    const tui = mount();
    await tui.send(
      { type: 'step', step: 'checking', status: 'done', ms: 300 },
      {
        type: 'step',
        step: 'downloading',
        status: 'failed',
        ms: 900,
        error: failedUnchanged.status === 'failed' ? failedUnchanged.error : { code: '', message: '' },
      },
      result(failedUnchanged),
    );
    const frame = tui.frame();
    assert.match(frame, /✖ Failed at downloading: nothing was changed/);
    assert.match(frame, /error:\s+E_NETWORK: Connection refused/);
    assert.doesNotMatch(frame, /backup:/);
  });

  test('Ctrl-C calls onCancel once, shows "Cancelling safely…", then what it did', async () => {
    const tui = mount();
    await tui.send(...checked, { type: 'step', step: 'downloading', status: 'running' }, progress(MiB));
    await tui.type('\u0003');
    await tui.type('\u0003');
    assert.equal(tui.cancels(), 1);
    assert.match(tui.frame(), /Cancelling safely…$/);
    assert.doesNotMatch(tui.frame(), /the switch has started/);
    await tui.send(
      {
        type: 'step',
        step: 'downloading',
        status: 'failed',
        ms: 800,
        error: { code: 'E_ABORTED', message: 'The operation was cancelled' },
      },
      result(cancelled),
    );
    const frame = tui.frame();
    assert.match(frame, /Cancelled: nothing was changed; a partial download is kept for a resume\./);
    assert.match(frame, /✖ Cancelled: nothing was changed/);
    assert.doesNotMatch(frame, /Cancelling safely/);
  });

  test('Ctrl-C at the prompt answers no and cancels', async () => {
    const tui = mount();
    await tui.send(...checked);
    const answer = tui.store.confirm({ from: '1.4.0.1', to: '1.4.0.2', strategy: 'patch' });
    await delay(5);
    await tui.type('\u0003');
    assert.equal(await answer, false);
    assert.equal(tui.cancels(), 1);
    assert.match(tui.frame(), /Cancelling safely…/);
    assert.doesNotMatch(tui.frame(), /Not switched/);
  });

  test('Ctrl-C during the switch says it finishes or rolls back first', async () => {
    const tui = mount();
    await tui.send(...checked, { type: 'step', step: 'stopping', status: 'running' });
    await tui.type('\u0003');
    assert.match(tui.frame(), /Cancelling safely… the switch has started: it finishes or rolls back first\./);
    await tui.send({ type: 'step', step: 'stopping', status: 'done', ms: 900 }, result(success));
    assert.match(tui.frame(), /The switch had already started, so it was finished: now on 1\.4\.0\.2\./);
  });

  test('warnings and errors from the run are shown, the last five only', async () => {
    const tui = mount();
    await tui.send(...checked);
    for (let index = 1; index <= 7; index++)
      await tui.send({ type: 'log', level: index === 7 ? 'error' : 'warn', message: `note ${index}` });
    const frame = tui.frame();
    assert.doesNotMatch(frame, /note 2\n/);
    assert.match(frame, /⚠ note 3/);
    assert.match(frame, /✖ note 7/);
  });
});
