import type { StepName } from '../../events/index.js';
import type { Phase, StepInfo, UpgradeStep } from '../context.js';
import { applying } from './applying.js';
import { backingUp } from './backing-up.js';
import { checking } from './checking.js';
import { cleaningUp } from './cleaning-up.js';
import { committing } from './committing.js';
import { downloading } from './downloading.js';
import { healthCheck } from './health-check.js';
import { loadingImages } from './loading-images.js';
import { migrating } from './migrating.js';
import { rebuildingImages } from './rebuilding-images.js';
import { staging } from './staging.js';
import { starting } from './starting.js';
import { stopping } from './stopping.js';
import { trafficOff, trafficOn } from './traffic.js';
import { verifying } from './verifying.js';

/**
 * The upgrade, in order (SPEC 8). The loop (StepRunner.runSteps) runs the rows of a phase, the
 * rollback walks their `undo` backwards, recovery reads their phase and downtime, the plan event
 * lists them for the TUI. Adding a step is its module and one row here.
 */
export const UPGRADE_STEPS: readonly (StepInfo | UpgradeStep)[] = [
  checking,
  downloading,
  verifying,
  staging,
  rebuildingImages,
  loadingImages,
  trafficOff,
  backingUp,
  stopping,
  applying,
  migrating,
  starting,
  healthCheck,
  trafficOn,
  committing,
  cleaningUp,
];

function runnable(row: StepInfo | UpgradeStep): row is UpgradeStep {
  return 'run' in row;
}

/** The steps the loop runs in a phase, in order. */
export function stepsOf(phase: Phase): UpgradeStep[] {
  return UPGRADE_STEPS.filter(runnable).filter((step) => step.phase === phase);
}

/** The plan without running anything: what --dry-run prints and the plan event carries. */
export function listSteps(options: { downloadOnly?: boolean } = {}): StepInfo[] {
  return UPGRADE_STEPS.filter((row) => !options.downloadOnly || row.phase === 'prepare').map(
    ({ name, phase, downtime, noReturn, summary }) => ({ name, phase, downtime, noReturn, summary }),
  );
}

/** Past the point of no return an interrupted upgrade is rolled back or committed, not abandoned (SPEC 9). */
export function pastPointOfNoReturn(step: StepName): boolean {
  return step === 'rolling_back' || UPGRADE_STEPS.some((row) => row.name === step && row.noReturn);
}
