import { existsSync } from 'node:fs';
import type { Dispatcher } from 'undici';
import type { Config, HomePaths } from '../config/index.js';
import { NuwaxError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { type FetchedManifest, fetchManifest } from '../manifest/index.js';
import { boxClientId, recordingCheck, type Store } from '../state/index.js';
import { decideStrategy, holdBack, rolloutStatus, type StrategyDecision, StrategyError } from '../strategy/index.js';

export interface CheckOptions {
  config: Config;
  paths: HomePaths;
  store: Store;
  clientVersion: string;
  hostArch?: string;
  forceFull?: boolean;
  allowDowngrade?: boolean;
  /** Take the release even when its staged rollout has not reached this box yet. */
  ignoreRollout?: boolean;
  signal?: AbortSignal;
  logger?: Logger;
  dispatcher?: Dispatcher;
  /** A manifest already in hand (staged release, offline bundle): skips the fetch. */
  fetched?: FetchedManifest;
  now?: Date;
}

export interface CheckResult {
  current: string | null;
  fetched: FetchedManifest;
  decision: StrategyDecision;
}

/** The installed version: the state store is the truth once nuwax has committed; before that, config.toml. */
export function installedVersion(store: Store, config: Config): string | null {
  return store.installedVersion(config.versions.docker_service);
}

export function decide(options: CheckOptions & { fetched: FetchedManifest; current: string | null }): StrategyDecision {
  const { manifest } = options.fetched;
  const rollout = rolloutStatus(manifest.rollout, boxClientId(options.store.kv), manifest.version);
  try {
    return holdBack(
      decideStrategy({
        currentVersion: options.current,
        hostArch: options.hostArch ?? process.arch,
        manifest: options.fetched.manifest,
        forceFull: options.forceFull ?? false,
        composeFileExists: existsSync(options.paths.composeFile),
        clientVersion: options.clientVersion,
        allowDowngrade: options.allowDowngrade ?? false,
        allowUnverified: options.config.security.allow_unverified,
        now: options.now ?? new Date(),
      }),
      rollout,
      options.ignoreRollout ?? false,
    );
  } catch (error) {
    if (error instanceof StrategyError) throw new NuwaxError(error.code, error.message, { cause: error });
    throw error;
  }
}

/** `checking`: fetch (conditional GET), verify, parse, decide. Nothing on the box changes. */
export async function checkForUpdate(options: CheckOptions): Promise<CheckResult> {
  const fetched =
    options.fetched ??
    (await recordingCheck(
      options.store.kv,
      fetchManifest({
        config: options.config,
        store: options.store,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      }),
    ));
  const current = installedVersion(options.store, options.config);
  return { current, fetched, decision: decide({ ...options, fetched, current }) };
}
