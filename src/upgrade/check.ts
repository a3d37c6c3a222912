import { existsSync } from 'node:fs';
import type { Dispatcher } from 'undici';
import type { Config, HomePaths } from '../config/index.js';
import { NuwaxError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { type FetchedManifest, fetchManifest } from '../manifest/index.js';
import type { Store } from '../state/index.js';
import { decideStrategy, type StrategyDecision, StrategyError } from '../strategy/index.js';

export interface CheckOptions {
  config: Config;
  paths: HomePaths;
  store: Store;
  clientVersion: string;
  hostArch?: string;
  forceFull?: boolean;
  allowDowngrade?: boolean;
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
  try {
    return decideStrategy({
      currentVersion: options.current,
      hostArch: options.hostArch ?? process.arch,
      manifest: options.fetched.manifest,
      forceFull: options.forceFull ?? false,
      composeFileExists: existsSync(options.paths.composeFile),
      clientVersion: options.clientVersion,
      allowDowngrade: options.allowDowngrade ?? false,
      allowUnverified: options.config.security.allow_unverified,
      now: options.now ?? new Date(),
    });
  } catch (error) {
    if (error instanceof StrategyError) throw new NuwaxError(error.code, error.message, { cause: error });
    throw error;
  }
}

/** `checking`: fetch (conditional GET), verify, parse, decide. Nothing on the box changes. */
export async function checkForUpdate(options: CheckOptions): Promise<CheckResult> {
  const fetched =
    options.fetched ??
    (await fetchManifest({
      config: options.config,
      store: options.store,
      signal: options.signal,
      logger: options.logger,
      dispatcher: options.dispatcher,
    }));
  const current = installedVersion(options.store, options.config);
  return { current, fetched, decision: decide({ ...options, fetched, current }) };
}
