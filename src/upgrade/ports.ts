import type { ApplyPlan, PatchInfo } from '../apply/index.js';
import type { ProgressListener } from '../events/index.js';
import type { ContainerEvidence } from '../runtime/index.js';

export type { ContainerEvidence, ServiceEvidence } from '../runtime/index.js';

export type { ApplyPlan, PatchInfo };

/**
 * The orchestrator's collaborators, narrowed to what it calls (STYLE: collaborators are passed in,
 * so a test can hand it a runtime that fails at step N). Production wiring happens once, in cli.
 */
export interface DownloaderPort {
  download(options: {
    urls: string[];
    /** null: a package installed unverified by choice ([security] allow_unverified). */
    sha256: string | null;
    size: number | null;
    signal?: AbortSignal;
    onProgress?: ProgressListener;
  }): Promise<{ path: string; size: number; sha256: string; reused: boolean }>;
}

export interface PackagePort {
  stage(
    file: string,
    stagingDir: string,
    options: { signal?: AbortSignal; onProgress?: ProgressListener },
  ): Promise<{ root: string; patchInfo: PatchInfo | null }>;
  /** The patch metadata of a package extracted earlier (null for a full package). */
  patchInfo(stagedRoot: string): Promise<PatchInfo | null>;
  validatePlan(stagedRoot: string, plan: ApplyPlan): Promise<void>;
  apply(options: {
    dockerDir: string;
    stagedRoot: string;
    plan: ApplyPlan;
    undoDir: string;
    signal?: AbortSignal;
  }): Promise<{ replaced: string[]; deleted: string[]; skippedProtected: string[] }>;
  undo(undoDir: string, dockerDir: string): Promise<void>;
  discardUndo(undoDir: string): Promise<void>;
  checkBase(
    dockerDir: string,
    patchInfo: PatchInfo,
  ): Promise<{ ok: boolean; mismatches: Array<{ path: string; expected: string | null; actual: string | null }> }>;
  pathsToBackUp(options: {
    plan: ApplyPlan;
    dockerDir: string;
    stagedRoot: string;
    include: string[];
  }): Promise<string[]>;
}

export interface BackupPort {
  create(options: {
    paths: string[];
    kind: 'pre-upgrade';
    version: string | null;
    upgradeId: number;
    signal?: AbortSignal;
    onProgress?: ProgressListener;
    /** backup.sh ran already: its file (null: no backup.sh). */
    hookFile?: string | null;
  }): Promise<{ id: number }>;
  /** docker/backup.sh, while the services run; the file it reported, null without a backup.sh. */
  runBackupHook(options: { signal?: AbortSignal }): Promise<string | null>;
  restore(
    id: number,
    options: { signal?: AbortSignal; onProgress?: ProgressListener; runHook?: boolean },
  ): Promise<void>;
  /** docker/restore.sh with the file backup.sh reported; null when the backup ran none. */
  runRestoreHook(id: number): Promise<{ file: string } | null>;
  prune(options: { keepIds: number[] }): Promise<void>;
}

export interface ServiceHealthFacts {
  service: string;
  healthy: boolean;
  critical: boolean;
  state: string;
  exitCode: number | null;
  oomKilled: boolean;
  restartCount: number;
  reason: string;
  logs: string[];
  portInUse?: string;
}

export interface HealthFacts {
  healthy: boolean;
  healthyServices: string[];
  unhealthyServices: string[];
  criticalFailures: string[];
  services: ServiceHealthFacts[];
}

export interface RuntimePort {
  available(): Promise<boolean>;
  validate(composeFile: string, signal?: AbortSignal): Promise<void>;
  loadImages(
    imagesDir: string,
    arch: 'x86_64' | 'aarch64',
    options: { signal?: AbortSignal; onProgress?: ProgressListener },
  ): Promise<{ loaded: string[]; skipped: string[] }>;
  checkImages(arch: 'x86_64' | 'aarch64', composeFile: string): Promise<void>;
  down(options: { signal?: AbortSignal; timeoutMs: number }): Promise<void>;
  /** Stops the services and keeps their containers, for `up` to start again or recreate what changed. */
  stop(options: { signal?: AbortSignal; timeoutMs: number }): Promise<void>;
  /** Why the switch to this compose file needs `down` rather than `stop`; null when it does not. */
  switchNeedsDown(composeFile: string, signal?: AbortSignal): Promise<string | null>;
  up(options: { signal?: AbortSignal; timeoutMs: number }): Promise<void>;
  /** Lists the services of the compose file the switch will start: the health check after it then asks no compose. */
  rememberServices(composeFile: string, signal?: AbortSignal): Promise<void>;
  health(options: {
    critical?: string[];
    timeoutMs: number;
    settleMs: number;
    http: Array<{ url: string; status: number }>;
    signal?: AbortSignal;
  }): Promise<HealthFacts>;
  diagnostics(): Promise<Record<string, unknown>>;
  /** Each container's state, HEALTHCHECK log and last log lines, read before a rollback touches them. */
  evidence(): Promise<ContainerEvidence>;
}

/** docker/traffic.sh: `off` before the services stop, `on` once they are healthy; null when there is no script. */
export interface TrafficPort {
  switch(state: 'off' | 'on', signal?: AbortSignal): Promise<Record<string, unknown> | null>;
}

export interface Collaborators {
  downloader: DownloaderPort;
  packages: PackagePort;
  backups: BackupPort;
  runtime: RuntimePort;
  /** Absent: no traffic protection (tests, tools that never stop services). */
  traffic?: TrafficPort;
}
