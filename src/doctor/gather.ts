import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import { pathsToBackUp } from '../apply/index.js';
import { type Config, type HomePaths, serverChoice } from '../config/index.js';
import { ErrorCodes, toNuwaxError } from '../errors/index.js';
import { exists, freeBytes, treeSize } from '../fsutil/index.js';
import type { Logger } from '../log/index.js';
import { type FetchedManifest, fetchManifest, manifestUrlFor } from '../manifest/index.js';
import type { Store } from '../state/index.js';
import type { StrategyDecision } from '../strategy/index.js';
import { checkForUpdate, fallsBackToStaged, readStaged } from '../upgrade/index.js';
import { type ComposePorts, portsFromComposeJson, portsFromComposeYaml } from './compose-ports.js';
import { probePort } from './probe.js';
import type {
  ComposeFact,
  ComposeFileFact,
  DiskArea,
  DiskFact,
  DockerFact,
  DoctorFacts,
  FactError,
  Failure,
  HomeFact,
  ManifestFact,
  PortProbe,
  PortProbeResult,
  PortsFact,
  ServerFact,
  ServicesFact,
} from './types.js';

/** What doctor asks of Docker, narrowed so a test can hand it anything (STYLE: collaborators passed in). */
export interface DoctorDocker {
  engine(): Promise<DockerFact>;
  compose(): Promise<ComposeFact>;
  /** compose's normalised configuration; throws E_COMPOSE_INVALID with compose's own words. */
  composeConfig(file: string): Promise<{ format: 'json' | 'yaml'; text: string }>;
  /** `port/protocol` published by the running containers of our compose project. */
  ownPorts(): Promise<string[]>;
  /** The live state of the project's containers. */
  services(): Promise<ServicesFact>;
}

export interface DoctorOptions {
  config: Config;
  paths: HomePaths;
  store: Store;
  clientVersion: string;
  docker: DoctorDocker;
  dispatcher?: Dispatcher;
  logger?: Logger;
  now?: () => Date;
  probePort?: (hostIp: string | null, port: number, protocol: string) => Promise<PortProbeResult>;
}

function failureOf(error: unknown): Failure {
  const nuwaxError = toNuwaxError(error);
  return { code: nuwaxError.code, message: nuwaxError.message };
}

/** The code a check line names: the errno (EACCES, EISDIR), else nuwax's code, else the error's name. */
function errorCode(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code !== '') return code;
  return error instanceof Error ? error.name : 'unknown error';
}

/** The path the error names (fs errors carry the exact file, deep inside a walked tree), else `where`. */
function factError(error: unknown, where: string): FactError {
  const errorPath = (error as NodeJS.ErrnoException | undefined)?.path;
  return { path: typeof errorPath === 'string' && errorPath !== '' ? errorPath : where, code: errorCode(error) };
}

/**
 * Gathers one fact so that it never rejects: an error becomes the fact itself (`onError`), so the
 * other checks still print and the verdict is still computed. Logged at debug with the whole error:
 * the check line already names the path and the code.
 */
async function settle<T>(
  options: DoctorOptions,
  what: string,
  gather: () => Promise<T>,
  onError: (error: unknown) => T,
): Promise<T> {
  try {
    return await gather();
  } catch (error) {
    options.logger?.debug({ err: error }, `doctor: cannot gather ${what}`);
    return onError(error);
  }
}

/**
 * The version of a release staged earlier, read from the store the way the upgrade finds it
 * (src/upgrade/staged.ts): one SELECT, no lock, nothing written.
 */
function stagedVersion(options: DoctorOptions): string | undefined {
  try {
    const version = readStaged(options.store)?.version;
    return typeof version === 'string' && version !== '' ? version : undefined;
  } catch (error) {
    // A store doctor cannot read is judged as nothing staged: no server then stays a failure.
    options.logger?.warn({ err: error }, 'doctor: cannot read the staged release from the state store');
    return undefined;
  }
}

interface ReleaseFacts {
  server: ServerFact;
  manifest: ManifestFact;
  serverDate: Date | null;
  /** This box's clock when the server's answer arrived, to compare with its Date. */
  answeredAt: Date | null;
  decision: StrategyDecision | null;
}

/** Codes that mean the server answered, but with a manifest we refuse. */
const MANIFEST_CODES = new Set(['E_SIGNATURE', 'E_MANIFEST']);

/** The release facts when no manifest was read: nothing answered, nothing decided. */
function unanswered(server: ServerFact, manifest: ManifestFact): ReleaseFacts {
  return { server, manifest, serverDate: null, answeredAt: null, decision: null };
}

/** A server that failed, naming the staged release the upgrade would install instead, if any. */
function failedServer(url: string | null, error: Failure, staged: string | undefined): ServerFact {
  const server: ServerFact = { url, error };
  if (staged) server.staged = staged;
  return server;
}

async function gatherRelease(options: DoctorOptions): Promise<ReleaseFacts> {
  const { config } = options;
  let url: string;
  try {
    url = manifestUrlFor(config);
  } catch (error) {
    // An air-gapped box installs its staged release with no server configured (as runUpgrade does).
    return unanswered(failedServer(null, failureOf(error), stagedVersion(options)), {
      state: 'unchecked',
      reason: 'no release server configured',
    });
  }
  let fetched: FetchedManifest;
  try {
    fetched = await fetchManifest({
      config,
      store: options.store,
      logger: options.logger,
      dispatcher: options.dispatcher,
    });
  } catch (error) {
    const failure = failureOf(error);
    if (MANIFEST_CODES.has(failure.code)) return unanswered({ url, error: null }, { state: 'invalid', error: failure });
    // The upgrade falls back to a staged release when the server fails (the same rule: src/upgrade/staged.ts).
    const staged = fallsBackToStaged(failure.code, config) ? stagedVersion(options) : undefined;
    return unanswered(failedServer(url, failure, staged), {
      state: 'unchecked',
      reason: 'the release server did not answer',
    });
  }
  const answeredAt = (options.now ?? (() => new Date()))();
  const date = fetched.serverDate ? new Date(fetched.serverDate) : null;
  const serverDate = date && !Number.isNaN(date.getTime()) ? date : null;
  const server: ServerFact = { url, error: null };
  try {
    const check = await checkForUpdate({
      config,
      paths: options.paths,
      store: options.store,
      clientVersion: options.clientVersion,
      fetched,
      now: options.now?.(),
    });
    const { decision } = check;
    const packageSize = decision.strategy === 'none' ? null : decision.package.size;
    const manifest: ManifestFact = {
      state: 'valid',
      version: fetched.manifest.version,
      signed: fetched.signed,
      keys: config.security.public_keys.length,
      current: check.current,
      strategy: decision.strategy,
      packageSize,
    };
    return { server, manifest, serverDate, answeredAt, decision };
  } catch (error) {
    return { server, manifest: { state: 'invalid', error: failureOf(error) }, serverDate, answeredAt, decision: null };
  }
}

/** The published ports in a compose configuration, or why they cannot be read. */
function portsIn(format: 'json' | 'yaml', text: string, source: string): ComposePorts | string {
  try {
    return format === 'json' ? portsFromComposeJson(text) : portsFromComposeYaml(text);
  } catch (error) {
    return `cannot read ${source}: ${(error as Error).message}`;
  }
}

interface ComposeFileFacts {
  fact: ComposeFileFact;
  ports: ComposePorts | string | null;
}

async function gatherComposeFile(options: DoctorOptions): Promise<ComposeFileFacts> {
  const file = options.paths.composeFile;
  if (!(await exists(file))) return { fact: { path: file, state: 'missing' }, ports: null };
  let normalised: { format: 'json' | 'yaml'; text: string };
  try {
    normalised = await options.docker.composeConfig(file);
  } catch (error) {
    const failure = failureOf(error);
    if (failure.code === ErrorCodes.E_COMPOSE_INVALID)
      return { fact: { path: file, state: 'invalid', reason: failure.message }, ports: null };
    // Without compose, the file as written still tells which ports it publishes (no variables resolved).
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (readError) {
      // A folder where the file should be (EISDIR), no read permission (EACCES): a fact, not a crash.
      options.logger?.debug({ err: readError }, 'doctor: cannot read the compose file');
      return { fact: { path: file, state: 'unreadable', code: errorCode(readError) }, ports: null };
    }
    return {
      fact: {
        path: file,
        state: 'unchecked',
        reason: failure.code === ErrorCodes.E_COMPOSE ? 'compose is not available' : failure.message,
      },
      ports: portsIn('yaml', text, 'the compose file'),
    };
  }
  return {
    fact: { path: file, state: 'valid' },
    ports: portsIn(normalised.format, normalised.text, "compose's output"),
  };
}

async function gatherPorts(
  options: DoctorOptions,
  docker: DockerFact,
  composeFile: ComposeFileFact,
  composePorts: ComposePorts | string | null,
): Promise<PortsFact> {
  if (composeFile.state === 'missing')
    return { state: 'unchecked', reason: 'no compose file yet: nothing is published', warn: false };
  if (composeFile.state === 'invalid')
    return { state: 'unchecked', reason: 'the compose file is not valid', warn: true };
  if (composePorts === null || typeof composePorts === 'string')
    return { state: 'unchecked', reason: composePorts ?? 'the compose file cannot be read', warn: true };
  let ours: string[] | null = null;
  if (docker.reachable) {
    ours = await options.docker.ownPorts().catch((error: unknown) => {
      options.logger?.warn({ err: error }, 'doctor: cannot list the ports of our own containers');
      return null;
    });
  }
  const probe = options.probePort ?? probePort;
  const probes: PortProbe[] = [];
  // One at a time: a probe holds its port only for an instant, and there are rarely more than a few.
  for (const port of composePorts.ports) {
    try {
      probes.push({ ...port, result: await probe(port.hostIp, port.port, port.protocol) });
    } catch (error) {
      // An errno probePort does not map (EINVAL, ...) says nothing about the port: this one is not checked.
      options.logger?.debug({ err: error }, 'doctor: a port probe failed');
      probes.push({ ...port, result: 'error', error: errorCode(error) });
    }
  }
  return { state: 'checked', probes, ours, hostNetwork: composePorts.hostNetwork, unreadable: composePorts.unreadable };
}

async function gatherServices(options: DoctorOptions, docker: DockerFact): Promise<ServicesFact> {
  if (!docker.reachable) return { seen: false, project: null, reason: 'the Docker engine is not reachable' };
  return options.docker.services();
}

/** The nearest folder of `target` that exists: doctor does not create the home's folders. */
async function nearestExisting(target: string): Promise<string> {
  let current = path.resolve(target);
  while (!(await exists(current)) && path.dirname(current) !== current) current = path.dirname(current);
  return current;
}

/** Writes and removes a probe file where nuwax will write: catches read-only mounts and root-owned homes. */
async function gatherHome(paths: HomePaths): Promise<HomeFact> {
  const wanted = [
    ...new Set([paths.home, paths.dataDir, paths.backupsDir, paths.downloadsDir, paths.cacheDir, paths.logsDir]),
  ];
  const probed = new Map<string, Promise<string | null>>();
  const probeIn = async (directory: string): Promise<string | null> => {
    const file = path.join(directory, `.nuwax-doctor-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await writeFile(file, 'nuwax doctor\n');
      await rm(file, { force: true });
      return null;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    }
  };
  const directories = [];
  for (const directory of wanted) {
    const existing = await nearestExisting(directory);
    if (!probed.has(existing)) probed.set(existing, probeIn(existing));
    directories.push({ path: directory, error: await probed.get(existing)! });
  }
  return { directories };
}

/** Outermost paths only, so a folder listed in `[backup] include` and inside a backed-up one counts once. */
function outermost(paths: string[]): string[] {
  const unique = [...new Set(paths.map((item) => item.replace(/\/+$/, '')))];
  return unique.filter(
    (candidate) => !unique.some((other) => other !== candidate && candidate.startsWith(`${other}/`)),
  );
}

/** Bytes the backup before the next upgrade would hold: the paths it changes plus `[backup] include` (SPEC 8). */
async function backupEstimate(options: DoctorOptions, decision: StrategyDecision | null): Promise<number> {
  const { config, paths } = options;
  const dockerEntries = await readdir(paths.dockerDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const changed =
    decision?.strategy === 'patch'
      ? pathsToBackUp({
          kind: 'patch',
          operations: decision.operations,
          dockerEntries: [],
          stagedEntries: [],
          protectedPaths: config.upgrade.protected,
        })
      : pathsToBackUp({ kind: 'full', dockerEntries, stagedEntries: [], protectedPaths: config.upgrade.protected });
  let total = 0;
  for (const relative of outermost([...changed, ...config.backup.include]))
    total += await treeSize(path.join(paths.dockerDir, ...relative.split('/')));
  return total;
}

async function diskArea(directory: string, needs: DiskArea['needs']): Promise<DiskArea> {
  const existing = await nearestExisting(directory);
  return { directory, device: (await stat(existing)).dev, free: await freeBytes(existing), needs };
}

async function gatherDisk(options: DoctorOptions, decision: StrategyDecision | null): Promise<DiskFact> {
  const offered = decision && decision.strategy !== 'none' ? decision : null;
  const download = offered?.package.size ?? 0;
  const { paths } = options;
  const errors: DiskFact['errors'] = [];
  const failed = (what: string, where: string) => (error: unknown) => {
    options.logger?.debug({ err: error }, `doctor: cannot ${what}`);
    errors.push({ what, ...factError(error, where) });
  };
  // A folder this user cannot read (a database's 0700 data dir under docker/) leaves the backup unknown,
  // not doctor dead.
  const backup = await backupEstimate(options, decision).catch((error: unknown) => {
    failed('estimate the backup', paths.dockerDir)(error);
    return 0;
  });
  const wanted: Array<[string, DiskArea['needs']]> = [
    // First, so a filesystem shared with the home is named by the home.
    [paths.home, []],
    [paths.downloadsDir, [{ what: 'download', bytes: download }]],
    // A gzip'd release extracts to about twice its size (docker save archives compress about 2:1).
    [paths.stagingDir, [{ what: 'extracted release', bytes: download * 2 }]],
    [paths.backupsDir, [{ what: 'backup', bytes: backup }]],
  ];
  const areas: DiskArea[] = [];
  for (const [directory, needs] of wanted) {
    const area = await diskArea(directory, needs).catch(failed('measure the free space', directory));
    if (area) areas.push(area);
  }
  const release: DiskFact['release'] = offered
    ? { version: offered.offered, packageSize: offered.package.size }
    : decision
      ? 'none'
      : 'unknown';
  return { areas, release, errors };
}

/**
 * Every fact doctor judges, gathered concurrently where they do not depend on each other. Each one
 * settles on its own: an error while gathering it becomes a fact its check reports (path and code).
 */
export async function gatherFacts(options: DoctorOptions): Promise<DoctorFacts> {
  const now = options.now ?? (() => new Date());
  const { paths } = options;
  const [docker, compose, composeFile, release, home] = await Promise.all([
    settle<DockerFact>(
      options,
      'the Docker engine',
      () => options.docker.engine(),
      (error) => ({ reachable: false, reason: `cannot ask Docker (${errorCode(error)})` }),
    ),
    settle<ComposeFact>(
      options,
      'compose',
      () => options.docker.compose(),
      (error) => ({ found: false, reason: `cannot look for compose (${errorCode(error)})` }),
    ),
    settle<ComposeFileFacts>(
      options,
      'the compose file',
      () => gatherComposeFile(options),
      (error) => ({ fact: { path: paths.composeFile, state: 'unreadable', code: errorCode(error) }, ports: null }),
    ),
    settle<ReleaseFacts>(
      options,
      'the release',
      () => gatherRelease(options),
      (error) =>
        unanswered(
          { url: null, error: failureOf(error) },
          { state: 'unchecked', reason: 'the release server was not asked' },
        ),
    ),
    settle<HomeFact>(
      options,
      'the home',
      () => gatherHome(paths),
      (error) => ({ directories: [{ path: paths.home, error: errorCode(error) }] }),
    ),
  ]);
  const local = release.answeredAt ?? now();
  const [ports, disk, services] = await Promise.all([
    settle<PortsFact>(
      options,
      'the ports',
      () => gatherPorts(options, docker, composeFile.fact, composeFile.ports),
      (error) => ({ state: 'unchecked', reason: `cannot probe the ports (${errorCode(error)})`, warn: true }),
    ),
    settle<DiskFact>(
      options,
      'the disk',
      () => gatherDisk(options, release.decision),
      (error) => ({
        areas: [],
        release: 'unknown',
        errors: [{ what: 'measure the disk', ...factError(error, paths.home) }],
      }),
    ),
    settle<ServicesFact>(
      options,
      'the services',
      () => gatherServices(options, docker),
      (error) => ({ seen: false, project: null, reason: `cannot list the containers (${errorCode(error)})` }),
    ),
  ]);
  return {
    docker,
    compose,
    composeFile: composeFile.fact,
    disk,
    home,
    server: { ...release.server, isDefault: serverChoice(options.config)?.isDefault ?? false },
    manifest: release.manifest,
    clock: { local, server: release.serverDate },
    ports,
    allowUnverified: options.config.security.allow_unverified,
    services,
  };
}
