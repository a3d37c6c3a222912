/**
 * The TUI's public face (SPEC 11). Importing it loads neither ink nor React and starts
 * nothing: `renderUpgradeTui` loads the app on first use, so `nuwax status` stays light.
 * Formatting helpers are pure and shared with the plain renderer.
 */
import type { UpgradeTui, UpgradeTuiOptions } from './types.js';

export {
  cleanText,
  firstLines,
  formatBytes,
  formatDuration,
  formatEta,
  formatProgress,
  formatRate,
  progressPercent,
  STEP_LABELS,
} from './format.js';
export {
  asUpgradeResult,
  describeCancel,
  describePlan,
  describeResult,
  type ResultSummary,
  type Tone,
} from './summary.js';
export type { UpgradeTui, UpgradeTuiOptions } from './types.js';
export type { ConfirmSummary } from './view.js';

export async function renderUpgradeTui(options: UpgradeTuiOptions): Promise<UpgradeTui> {
  const { mountUpgradeTui } = await import('./app.js');
  return mountUpgradeTui(options);
}
