import { mkdir, rm } from 'node:fs/promises';
import { ErrorCodes, NuwaxError } from '../../errors/index.js';
import { prepareState, type StepContext, type StepOutcome, type UpgradeStep } from '../context.js';
import { applyPlanOf, savePlan } from '../plan.js';
import { detachExtraction, stagedExtraction } from '../staged.js';

/**
 * Extracts the package into its own folder of cache/staging, or takes the extraction made when
 * the release was staged. A patch whose base does not match the box sends the loop back to
 * download the full package (SPEC 7); the plan is then checked against what was extracted.
 */
export const staging: UpgradeStep = {
  name: 'staging',
  phase: 'prepare',
  downtime: false,
  noReturn: false,
  summary: 'extract into cache/staging (or reuse the pre-staged extraction); check a patch against the box',
  async run(context, signal) {
    const { plan, collaborators, store, upgradeId, paths } = context;
    const prepare = prepareState(context);
    prepare.staged = await extract(context, signal);
    const { patchInfo } = prepare.staged;
    if (plan.strategy === 'patch' && patchInfo?.base) {
      const base = await collaborators.packages.checkBase(paths.dockerDir, patchInfo);
      if (!base.ok) return fullPackageInstead(context, changedPaths(base.mismatches));
    }
    plan.stagedRoot = prepare.staged.root;
    savePlan(store, upgradeId, plan);
    await collaborators.packages.validatePlan(plan.stagedRoot, applyPlanOf(plan));
    return undefined;
  },
  async undo(context, undoing) {
    // A reused extraction is trusted by its fingerprint, not its bytes: when what follows fails
    // (a corrupt image, a file the plan cannot apply), the next run extracts it again from the
    // package, which is hashed again, instead of failing the same way every time.
    const code = undoing.failure.code;
    if (code !== ErrorCodes.E_ABORTED && code !== ErrorCodes.E_CANCELLED) detachExtraction(context.store, context.plan);
  },
};

async function extract(context: StepContext, signal: AbortSignal) {
  const { plan, collaborators, store, paths } = context;
  const prepare = prepareState(context);
  const sha256 = prepare.decision.package.sha256;
  const extracted = prepare.downloadOnly
    ? undefined
    : await stagedExtraction(store, sha256, paths.stagingDir, context.logger);
  if (extracted) {
    // Pre-staged: the package was extracted then, and the tree is as it was left.
    if (plan.stagingDir !== extracted.stagingDir) await rm(plan.stagingDir, { recursive: true, force: true });
    plan.stagingDir = extracted.stagingDir;
    context.emit({
      type: 'log',
      level: 'info',
      step: 'staging',
      message: 'Using the extraction made when the release was staged',
    });
    return { root: extracted.root, patchInfo: await collaborators.packages.patchInfo(extracted.root) };
  }
  // The staged patch reused, then its base did not match: the full package goes into its folder.
  detachExtraction(store, plan);
  await rm(plan.stagingDir, { recursive: true, force: true });
  await mkdir(plan.stagingDir, { recursive: true });
  return collaborators.packages.stage(prepare.download!.path, plan.stagingDir, { signal, onProgress: context.emit });
}

function changedPaths(mismatches: Array<{ path: string }>): string {
  return mismatches
    .map((item) => item.path)
    .slice(0, 5)
    .join(', ');
}

/**
 * A patch that does not fit the box (files edited by hand, image layers it lacks) gives way to the
 * full package of the same release: the plan says so, and the loop goes back to download it.
 */
export function fullPackageInstead(context: StepContext, changed: string): StepOutcome {
  const { plan, store, upgradeId } = context;
  const prepare = prepareState(context);
  const full = prepare.redecide(true);
  if (full.strategy !== 'full')
    throw new NuwaxError(
      ErrorCodes.E_BASE_MISMATCH,
      `Files changed by hand (${changed}) and no full package to fall back to`,
    );
  plan.fallbackReason = `The box differs from the patch's base (${changed}); installed the full package instead`;
  context.emit({ type: 'log', level: 'warn', message: plan.fallbackReason });
  Object.assign(plan, {
    strategy: 'full',
    operations: null,
    packageUrl: full.package.url,
    packageSha256: full.package.sha256,
  });
  store.upgrades.update(upgradeId, { strategy: 'full', reason: plan.fallbackReason });
  prepare.decision = full;
  return { again: 'downloading' };
}
