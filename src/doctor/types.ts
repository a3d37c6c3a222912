/**
 * `nuwax doctor` (SPEC 11). The facts are gathered by I/O (gather.ts); the check lines and
 * the verdict are a pure function of them (judge.ts), tested by a table.
 */
import type { ServicesView } from '../services/index.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';
export type CheckId =
  | 'docker'
  | 'compose'
  | 'compose_file'
  | 'disk'
  | 'home'
  | 'server'
  | 'manifest'
  | 'clock'
  | 'ports'
  | 'services';
export type Verdict = 'READY' | 'READY_WITH_WARNINGS' | 'NOT_READY';

export interface DoctorCheck {
  /** Stable: scripts key on it. */
  id: CheckId;
  title: string;
  status: CheckStatus;
  /** One line. */
  message: string;
  /** What to do; every `fail` has one. */
  hint?: string;
}

export interface DoctorReport {
  verdict: Verdict;
  checks: DoctorCheck[];
}

export interface Failure {
  code: string;
  message: string;
}

/**
 * A fact that could not be gathered: the path being read and the error's code (EACCES, EISDIR,
 * ...). Doctor reports it on its check's line instead of failing as a whole (a 0700 database folder
 * under docker/ must not hide the other eight checks).
 */
export interface FactError {
  path: string;
  code: string;
}

export type DockerFact = { reachable: true; version: string } | { reachable: false; reason: string };

export type ComposeFact =
  | { found: true; command: string; kind: 'v2' | 'v1'; version: string }
  | { found: false; reason: string };

export type ComposeFileFact =
  | { path: string; state: 'missing' }
  | { path: string; state: 'valid' }
  | { path: string; state: 'invalid'; reason: string }
  | { path: string; state: 'unchecked'; reason: string }
  /** Neither compose nor doctor could read it (a folder in its place, no read permission). */
  | { path: string; state: 'unreadable'; code: string };

export interface DiskNeed {
  what: string;
  bytes: number;
}

/** A folder the next upgrade writes to, with the filesystem it lives on. */
export interface DiskArea {
  directory: string;
  /** `stat().dev` of the folder (or its nearest existing parent): areas on one filesystem add up. */
  device: number;
  free: number;
  needs: DiskNeed[];
}

export interface DiskFact {
  areas: DiskArea[];
  /**
   * The release the next upgrade would install (its package size when the manifest gives it), `none`
   * when the box is up to date, `unknown` when the server did not say.
   */
  release: { version: string; packageSize: number | null } | 'none' | 'unknown';
  /**
   * What could not be measured (`what`: the backup estimate, the free space of an area); the areas and needs hold
   * the rest.
   */
  errors: Array<FactError & { what: string }>;
}

export interface HomeFact {
  directories: Array<{ path: string; error: string | null }>;
}

export interface ServerFact {
  url: string | null;
  /** null when the server answered the manifest. */
  error: Failure | null;
  /**
   * With no server configured, the version of a release staged earlier (`nuwax import`,
   * `upgrade --download-only`): the upgrade installs it without a server (the supported air-gapped box).
   */
  staged?: string;
  /** True when the server is nuwax-cli's default (a nuwax-cli config.toml without `[server]`). */
  isDefault?: boolean;
}

export type ManifestFact =
  | {
      state: 'valid';
      version: string;
      signed: boolean;
      keys: number;
      current: string | null;
      strategy: 'full' | 'patch' | 'none';
      packageSize: number | null;
    }
  | { state: 'invalid'; error: Failure }
  | { state: 'unchecked'; reason: string };

export interface ClockFact {
  local: Date;
  /** The release server's `Date` header, when it answered with one. */
  server: Date | null;
}

export type PortProbeResult = 'free' | 'in_use' | 'denied' | 'no_address' | 'unsupported';

export interface PortProbe {
  service: string;
  hostIp: string | null;
  port: number;
  protocol: string;
  /** `error` when the probe failed in a way that says nothing about the port (an unexpected errno). */
  result: PortProbeResult | 'error';
  /** The error's code, with `result: 'error'`. */
  error?: string;
}

export type PortsFact =
  | {
      state: 'checked';
      probes: PortProbe[];
      /** `port/protocol` published by containers of our own compose project; null when Docker cannot say. */
      ours: string[] | null;
      /** Services with `network_mode: host`: the ports they listen on are not in the compose file. */
      hostNetwork: string[];
      /** Port entries that could not be read (a variable compose could not resolve, odd syntax). */
      unreadable: string[];
    }
  /** `warn` false when there is simply nothing to check (no compose file yet). */
  | { state: 'unchecked'; reason: string; warn: boolean };

/** The deployed services as the engine sees them now (src/services). */
export type ServicesFact = ServicesView;

export interface DoctorFacts {
  docker: DockerFact;
  compose: ComposeFact;
  composeFile: ComposeFileFact;
  disk: DiskFact;
  home: HomeFact;
  server: ServerFact;
  manifest: ManifestFact;
  clock: ClockFact;
  ports: PortsFact;
  /** `[security] allow_unverified`: packages without a SHA-256 would be installed. */
  allowUnverified?: boolean;
  services: ServicesFact;
}
