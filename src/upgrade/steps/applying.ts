import type { UpgradeStep } from '../context.js';
import { applyPlanOf, savePlan } from '../plan.js';
import { detachExtraction } from '../staged.js';

/** Moves the staged files into docker/, writing an undo journal first (src/apply). */
export const applying: UpgradeStep = {
  name: 'applying',
  phase: 'switch',
  downtime: true,
  noReturn: true,
  summary: 'move the staged files into docker/ (full or patch), protected paths kept, undo journal written',
  async run(context, signal) {
    const { plan, collaborators, store, upgradeId, paths } = context;
    plan.applyStarted = true;
    store.transaction(() => {
      savePlan(store, upgradeId, plan);
      // The apply moves files out of the extraction: if it was the staged one, it is staged no more.
      detachExtraction(store, plan);
    });
    await collaborators.packages.apply({
      dockerDir: paths.dockerDir,
      stagedRoot: plan.stagedRoot!,
      plan: applyPlanOf(plan),
      undoDir: plan.undoDir,
      signal,
    });
    return undefined;
  },
  async undo(context, undoing) {
    const { plan, collaborators, paths } = context;
    if (plan.applyStarted)
      await undoing.attempt('undo the file changes', () => collaborators.packages.undo(plan.undoDir, paths.dockerDir));
  },
};
