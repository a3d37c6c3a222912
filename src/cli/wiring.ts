import {
  applyStaged,
  backupPathsFor,
  checkPatchBase,
  discardUndo,
  type PatchInfo,
  readPatchInfo,
  stagePackage,
  undoApply,
  validatePlan,
} from '../apply/index.js';
import { BackupService, runHook } from '../backup/index.js';
import { download } from '../downloader/index.js';
import { createDispatcher } from '../manifest/index.js';
import { DockerRuntime, dockerAvailable } from '../runtime/index.js';
import type { Collaborators } from '../upgrade/index.js';
import type { CliContext } from './context.js';

/** Production wiring of the upgrade's collaborators, done once, here (STYLE). */
export function createCollaborators(context: CliContext, options: { signalRateLimit?: number } = {}): Collaborators {
  const { config, paths, store, logger } = context;
  const dispatcher = createDispatcher(config);
  const runtime = new DockerRuntime({
    dockerDir: paths.dockerDir,
    composeFile: paths.composeFile,
    projectName: config.docker.project_name || undefined,
    logger,
    commandTimeoutMs: config.upgrade.phase_timeout * 1000,
    stopTimeoutSeconds: config.docker.stop_timeout,
  });
  const backups = createBackupService(context);
  return {
    downloader: {
      download: (request) =>
        download({
          urls: request.urls,
          sha256: request.sha256,
          size: request.size,
          directory: paths.downloadsDir,
          store,
          retries: config.download.retries,
          stallTimeoutMs: config.download.stall_timeout * 1000,
          minRate: { bytesPerSecond: config.download.min_rate, windowMs: config.download.min_rate_window * 1000 },
          rateLimit: options.signalRateLimit ?? config.download.rate_limit,
          logger,
          signal: request.signal,
          onProgress: request.onProgress,
          dispatcher,
        }),
    },
    packages: {
      stage: async (file, stagingDir, stageOptions) => {
        const staged = await stagePackage(file, stagingDir, {
          ...stageOptions,
          maxRatio: config.archive.max_ratio,
          maxTotalBytes: config.archive.max_size || undefined,
        });
        return { root: staged.root, patchInfo: staged.patchInfo ?? null };
      },
      patchInfo: (root) => readPatchInfo(root),
      validatePlan: (root, plan) => validatePlan(root, plan),
      apply: (applyOptions) => applyStaged(applyOptions),
      undo: async (undoDir, dockerDir) => {
        await undoApply(undoDir, dockerDir);
      },
      discardUndo: (undoDir) => discardUndo(undoDir),
      checkBase: (dockerDir, patchInfo) =>
        checkPatchBase(dockerDir, patchInfo as PatchInfo, { protectedPaths: config.upgrade.protected }),
      pathsToBackUp: (request) => backupPathsFor(request),
    },
    backups: {
      create: (request) => backups.create(request),
      runBackupHook: (hookOptions) => backups.runBackupHook(hookOptions),
      runRestoreHook: (id) => backups.runRestoreHook(id),
      restore: async (id, restoreOptions) => {
        await backups.restore(id, restoreOptions);
      },
      prune: async ({ keepIds }) => {
        await backups.prune({ keepIds });
      },
    },
    runtime: {
      available: () => dockerAvailable(),
      validate: (composeFile, signal) => runtime.validate(composeFile, signal),
      loadImages: (imagesDir, arch, loadOptions) => runtime.loadImages(imagesDir, arch, loadOptions),
      checkImages: (arch, composeFile) => runtime.checkImages(arch, composeFile),
      down: async (downOptions) => {
        await runtime.down(downOptions);
      },
      stop: async (stopOptions) => {
        await runtime.stop(stopOptions);
      },
      switchNeedsDown: (composeFile, signal) => runtime.switchNeedsDown(composeFile, signal),
      up: async (upOptions) => {
        await runtime.up(upOptions);
      },
      rememberServices: async (composeFile, signal) => {
        await runtime.services(composeFile, signal);
      },
      health: (healthOptions) => runtime.health(healthOptions),
      diagnostics: () => runtime.collectDiagnostics(),
      evidence: () => runtime.evidence(),
    },
    traffic: {
      switch: (state, signal) =>
        runHook(paths.dockerDir, 'traffic.sh', [state], { signal, timeoutMs: config.upgrade.phase_timeout * 1000 }),
    },
  };
}

export function createBackupService(context: CliContext): BackupService {
  const { config, paths, store, logger } = context;
  return new BackupService({
    home: paths.home,
    dockerDir: paths.dockerDir,
    backupsDir: paths.backupsDir,
    store,
    logger,
    compression: config.backup.compression,
    retention: config.backup.retention,
  });
}
