import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ErrorCodes, NuwaxError, toNuwaxError } from '../errors/index.js';
import { ensureFreeSpace, exists, formatBytes } from '../fsutil/index.js';
import { rebuildImagesOrMismatch } from '../images/index.js';
import type { StrategyDecision } from '../strategy/index.js';
import type { UpgradeOptions } from './orchestrator.js';
import { savePlan } from './plan.js';
import { StepFailure } from './journal.js';
import type { ApplyPlan, PatchInfo } from './ports.js';
import { detachExtraction, stagedExtraction } from './staged.js';
import type { SwitchContext } from './switch.js';

type PrepareContext = UpgradeOptions & Omit<SwitchContext, 'signal'> & { decision: StrategyDecision };

/** Margin kept free on top of every estimate (issue 6: disk budget). */
const DISK_MARGIN = 256 * 1024 * 1024;

export function applyPlanOf(plan: SwitchContext['plan']): ApplyPlan {
  return {
    kind: plan.strategy,
    ...(plan.operations ? { operations: plan.operations } : {}),
    protectedPaths: plan.protectedPaths,
  };
}

async function sha256Of(file: string, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hash, { signal });
  return hash.digest('hex');
}

async function treeSize(root: string): Promise<number> {
  let total = 0;
  const walk = async (directory: string): Promise<void> => {
    for (const entry of await readdir(directory, { withFileTypes: true })) {
      const full = path.join(directory, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) total += (await stat(full)).size;
    }
  };
  if (await exists(root)) await walk(root);
  return total;
}

/**
 * The half of an upgrade that changes nothing on the box (SPEC 8): download, verify, stage,
 * load images and check them, all while the old version still runs. A patch whose base does not
 * match the box falls back to the full package (issue 5: base check).
 */
export async function prepareRelease(
  context: PrepareContext,
  redecide: (forceFull: boolean) => StrategyDecision,
): Promise<void> {
  const { plan, runner, collaborators, store, paths } = context;
  const fetchAndStage = async (decision: Exclude<StrategyDecision, { strategy: 'none' }>) => {
    const sha256 = decision.package.sha256;
    const download = await runner.run('downloading', (signal) =>
      collaborators.downloader.download({
        urls: [decision.package.url, ...decision.package.mirrors],
        sha256: sha256 ?? '',
        size: decision.package.size,
        signal,
        onProgress: context.emit,
      }),
    );
    await runner.run('verifying', async (signal) => {
      // The downloader hashed while writing; a reused or staged file is hashed again before use.
      if (sha256 && download.reused && (await sha256Of(download.path, signal)) !== sha256) {
        await rm(download.path, { force: true });
        throw new NuwaxError(
          ErrorCodes.E_HASH_MISMATCH,
          `The staged package ${download.path} no longer matches its hash; it was deleted`,
          { details: { expected: sha256 } },
        );
      }
    });
    plan.packagePath = download.path;
    const extracted = context.downloadOnly
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
      return runner.run('staging', async () => ({
        root: extracted.root,
        patchInfo: await collaborators.packages.patchInfo(extracted.root),
      }));
    }
    // The staged patch reused, then its base did not match: the full package goes into its folder.
    detachExtraction(store, plan);
    await rm(plan.stagingDir, { recursive: true, force: true });
    await mkdir(plan.stagingDir, { recursive: true });
    return runner.run('staging', (signal) =>
      collaborators.packages.stage(download.path, plan.stagingDir, { signal, onProgress: context.emit }),
    );
  };

  try {
    await stageAndLoad(context, fetchAndStage, redecide);
  } catch (error) {
    // A reused extraction is trusted by its fingerprint, not its bytes: when what follows fails
    // (a corrupt image, a file the plan cannot apply), the next run extracts it again from the
    // package, which is hashed again, instead of failing the same way every time.
    const code = (error instanceof StepFailure ? error.error : toNuwaxError(error)).code;
    if (code !== ErrorCodes.E_ABORTED && code !== ErrorCodes.E_CANCELLED) detachExtraction(store, plan);
    throw error;
  }
}

type Staged = { root: string; patchInfo: PatchInfo | null };

async function stageAndLoad(
  context: PrepareContext,
  fetchAndStage: (decision: Exclude<StrategyDecision, { strategy: 'none' }>) => Promise<Staged>,
  redecide: (forceFull: boolean) => StrategyDecision,
): Promise<void> {
  const { plan, runner, collaborators, store, upgradeId, paths } = context;
  let staged = await fetchAndStage(context.decision as Exclude<StrategyDecision, { strategy: 'none' }>);
  if (plan.strategy === 'patch') {
    const base = staged.patchInfo?.base
      ? await collaborators.packages.checkBase(paths.dockerDir, staged.patchInfo)
      : { ok: true, mismatches: [] };
    // Thin image archives are rebuilt from the layers the box has; a layer it lacks is a base mismatch too.
    const images = base.ok
      ? await rebuildImagesOrMismatch(staged.root, paths.dockerDir, { signal: context.signal })
      : null;
    if (!base.ok || images) {
      const changed =
        images ??
        base.mismatches
          .map((item) => item.path)
          .slice(0, 5)
          .join(', ');
      const full = redecide(true);
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
      staged = await fetchAndStage(full);
    }
  }
  plan.stagedRoot = staged.root;
  savePlan(store, upgradeId, plan);
  await collaborators.packages.validatePlan(staged.root, applyPlanOf(plan));

  await runner.run('loading_images', async (signal) => {
    const imagesDir = path.join(staged.root, 'images');
    const imageBytes = await treeSize(imagesDir);
    const backupEstimate = plan.skipBackup ? 0 : await treeSize(paths.dockerDir);
    // docker load needs about twice the archives while it runs (issue 6: disk budget).
    await ensureFreeSpace(
      paths.home,
      imageBytes * 2 + backupEstimate + DISK_MARGIN,
      `loading images (${formatBytes(imageBytes)}) and the backup (about ${formatBytes(backupEstimate)})`,
    );
    if (context.downloadOnly && !(await collaborators.runtime.available())) {
      context.emit({
        type: 'log',
        level: 'warn',
        message: 'Docker is not reachable: images not loaded; they load at the switch',
      });
      return;
    }
    if (await exists(imagesDir))
      await collaborators.runtime.loadImages(imagesDir, plan.arch, { signal, onProgress: context.emit });
    const stagedCompose = path.join(staged.root, path.basename(paths.composeFile));
    if (await exists(stagedCompose)) {
      // compose v1 takes seconds here: say what the step waits for once the images are in.
      context.emit({
        type: 'log',
        level: 'info',
        step: 'loading_images',
        message: 'Checking the new compose file and that its images exist for this arch',
      });
      await collaborators.runtime.validate(stagedCompose, signal);
      await collaborators.runtime.checkImages(plan.arch, stagedCompose);
    }
  });
  savePlan(store, upgradeId, plan);
}
