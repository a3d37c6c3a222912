import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createViewStore, initialView, isSwitching, LOG_LINES, reduceView } from '../../src/tui/view.js';
import { failedUnchanged, plan, progress, result, successfulRun } from './fixtures.js';

describe('TUI view state', () => {
  test('steps are kept in SPEC 8 order whatever order their events come in', () => {
    let state = initialView();
    state = reduceView(state, { type: 'step', step: 'verifying', status: 'done', ms: 5 }, 0);
    state = reduceView(state, { type: 'step', step: 'downloading', status: 'done', ms: 5 }, 0);
    state = reduceView(state, { type: 'step', step: 'rolling_back', status: 'running' }, 0);
    assert.deepEqual(
      state.steps.map((row) => row.step),
      ['downloading', 'verifying', 'rolling_back'],
    );
  });

  test('a new run clears the rows left by recovering an interrupted upgrade', () => {
    let state = initialView();
    state = reduceView(state, { type: 'step', step: 'rolling_back', status: 'done', ms: 5 }, 0);
    state = reduceView(state, { type: 'step', step: 'checking', status: 'running' }, 10);
    assert.deepEqual(state.steps, [{ step: 'checking', status: 'running', startedAt: 10 }]);
  });

  test("a step the TUI does not know, listed by the plan, is shown in the plan's order", () => {
    const steps = ['checking', 'downloading', 'backing_up', 'traffic_off', 'stopping'].map((name) => ({
      name,
      phase: name === 'checking' || name === 'downloading' ? ('prepare' as const) : ('switch' as const),
      downtime: name === 'stopping',
      noReturn: name === 'stopping',
      summary: name,
    }));
    let state = reduceView(initialView(), { ...plan, steps }, 0);
    state = reduceView(state, { type: 'step', step: 'traffic_off', status: 'running' }, 0);
    assert.deepEqual(
      state.steps.map((row) => `${row.step}:${row.status}`),
      ['checking:pending', 'downloading:pending', 'backing_up:pending', 'traffic_off:running', 'stopping:pending'],
    );
  });

  test('a download-only plan lists only the preparing steps', () => {
    const state = reduceView(initialView(), { ...plan, downloadOnly: true }, 0);
    assert.deepEqual(
      state.steps.map((row) => row.step),
      ['checking', 'downloading', 'verifying', 'staging', 'rebuilding_images', 'loading_images'],
    );
  });

  test('progress belongs to its step and goes when the step ends; steps that will not run leave at the result', () => {
    let state = reduceView(initialView(), plan, 0);
    state = reduceView(state, { type: 'step', step: 'downloading', status: 'running' }, 0);
    state = reduceView(state, progress(10), 0);
    assert.equal(state.progress?.done, 10);
    state = reduceView(state, { type: 'step', step: 'downloading', status: 'failed', ms: 9 }, 0);
    assert.equal(state.progress, null);
    state = reduceView(state, result(failedUnchanged), 0);
    assert.deepEqual(
      state.steps.map((row) => `${row.step}:${row.status}`),
      ['downloading:failed'],
    );
    assert.equal(state.result?.status, 'failed');
  });

  test(`only the last ${LOG_LINES} log lines are kept`, () => {
    let state = initialView();
    for (let index = 0; index < 9; index++)
      state = reduceView(state, { type: 'log', level: 'info', message: String(index) }, 0);
    assert.deepEqual(
      state.logs.map((log) => log.message),
      ['4', '5', '6', '7', '8'],
    );
  });

  test('the switch starts at the backup: a cancel from there cannot stop the upgrade', () => {
    const downloading = reduceView(initialView(), { type: 'step', step: 'downloading', status: 'running' }, 0);
    assert.equal(isSwitching(downloading), false);
    assert.equal(
      isSwitching(reduceView(downloading, { type: 'step', step: 'backing_up', status: 'running' }, 0)),
      true,
    );
  });

  test('cancel calls onCancel once and answers a pending prompt with no', async () => {
    let cancels = 0;
    const store = createViewStore({ onCancel: () => cancels++ });
    for (const event of successfulRun().slice(0, 3)) store.listener(event);
    const answer = store.confirm({ from: '1.4.0.1', to: '1.4.0.2', strategy: 'patch' });
    store.cancel();
    store.cancel();
    assert.equal(await answer, false);
    assert.equal(cancels, 1);
    assert.equal(
      await store.confirm({ from: '1.4.0.1', to: '1.4.0.2', strategy: 'patch' }),
      false,
      'after a cancel the answer is no',
    );
  });

  test('a cancel after the result does nothing', () => {
    let cancels = 0;
    const store = createViewStore({ onCancel: () => cancels++ });
    for (const event of successfulRun()) store.listener(event);
    store.cancel();
    assert.equal(cancels, 0);
    assert.equal(store.getState().cancelling, false);
  });
});
