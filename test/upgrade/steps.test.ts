import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { STEPS } from '../../src/events/index.js';
import { listSteps } from '../../src/upgrade/index.js';
import { pastPointOfNoReturn, stepsOf, UPGRADE_STEPS } from '../../src/upgrade/steps/index.js';

describe('the upgrade step table', () => {
  test("lists the journal's step names in SPEC 8 order, prepare then switch then commit", () => {
    const names = UPGRADE_STEPS.map((step) => step.name);
    assert.deepEqual(names, [
      'checking',
      'downloading',
      'verifying',
      'staging',
      'rebuilding_images',
      'loading_images',
      'traffic_off',
      'backing_up',
      'stopping',
      'applying',
      'migrating',
      'starting',
      'health_check',
      'traffic_on',
      'committing',
      'cleaning_up',
    ]);
    assert.deepEqual(
      names,
      STEPS.filter((step) => step !== 'rolling_back'),
      "the stream's documented vocabulary",
    );
    const phases = UPGRADE_STEPS.map((step) => step.phase);
    assert.deepEqual([...new Set(phases)], ['prepare', 'switch', 'commit'], 'each phase is one run of rows');
  });

  test('the services are down from the backup to health_check, and recovery rolls back from stopping on', () => {
    assert.deepEqual(
      UPGRADE_STEPS.filter((step) => step.downtime).map((step) => step.name),
      ['backing_up', 'stopping', 'applying', 'migrating', 'starting', 'health_check'],
    );
    assert.deepEqual(STEPS.filter(pastPointOfNoReturn), [
      'stopping',
      'applying',
      'migrating',
      'starting',
      'health_check',
      'traffic_on',
      'committing',
      'cleaning_up',
      'rolling_back',
    ]);
  });

  test('the plan is listed without running anything; a download-only plan has only the prepare steps', () => {
    assert.deepEqual(
      listSteps({ downloadOnly: true }).map((step) => step.name),
      ['checking', 'downloading', 'verifying', 'staging', 'rebuilding_images', 'loading_images'],
    );
    assert.equal(listSteps().length, UPGRADE_STEPS.length);
    assert.ok(listSteps().every((step) => step.summary.length > 0 && !('run' in step)));
  });

  test('traffic.sh: off first in the switch (its failure changes nothing), on first in the commit', () => {
    assert.equal(stepsOf('switch')[0]!.name, 'traffic_off');
    assert.equal(stepsOf('switch')[0]!.noReturn, false, 'its failure is before the point of no return');
    assert.ok(stepsOf('switch')[0]!.afterRestart, 'the rollback lets the traffic back in');
    assert.equal(stepsOf('commit')[0]!.name, 'traffic_on');
    assert.equal(stepsOf('commit')[0]!.mayFail, true);
  });

  test('the switch steps that change files or data can be undone; the loop runs only rows with a run', () => {
    assert.deepEqual(
      stepsOf('switch')
        .filter((step) => step.undo)
        .map((step) => step.name),
      ['backing_up', 'applying', 'migrating'],
    );
    assert.deepEqual(
      stepsOf('prepare').map((step) => step.name),
      ['downloading', 'verifying', 'staging', 'rebuilding_images', 'loading_images'],
      'checking runs before the upgrade is recorded',
    );
  });
});
