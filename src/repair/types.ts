/**
 * `nuwax repair`: facts gathered by I/O (gather.ts), a plan that is a pure function of them
 * (plan.ts), and the effects that carry the plan out (perform.ts). Nothing here touches the content
 * of docker/data/ or of any `[upgrade] protected` path.
 */
export const REPAIR_KINDS = ['failed-startup', 'network', 'volumes', 'permissions'] as const;
export type RepairKind = (typeof REPAIR_KINDS)[number];

export interface ServiceFact {
  service: string;
  critical: boolean;
  /** Short container id; null when compose has no container for the service. */
  container: string | null;
  /** Docker's state (`running`, `exited`, ...) or `missing`. */
  state: string;
  /** True when the service runs and its HEALTHCHECK (if any) does not say unhealthy. */
  up: boolean;
  /** Networks the container is attached to whose network no longer exists in the engine. */
  missingNetworks: string[];
}

export interface NetworkFact {
  id: string;
  name: string;
}

/** A published port that something other than our own containers holds. */
export interface PortHolder {
  service: string;
  port: number;
  protocol: string;
  /** null when /proc does not say (another user's process, not Linux). */
  pid: number | null;
  command: string | null;
}

export interface Ownership {
  uid: number;
  gid: number;
}

export interface MountFact {
  service: string;
  source: string;
  /** The service's `user:` when it is numeric (a name cannot be resolved on the host safely). */
  user: Ownership | null;
  /** Inside docker/data/ or another protected path: created when missing, never changed otherwise. */
  protected: boolean;
  /** null when the source does not exist. */
  stat: { directory: boolean; uid: number; gid: number; mode: number } | null;
}

export interface HomeEntryFact {
  path: string;
  kind: 'directory' | 'file';
  /** What nuwax needs: exact for private entries (backups 0700/0600), at least these bits otherwise. */
  mode: number;
  exact: boolean;
  /** Created when missing (the home's own folders); a missing file is only reported. */
  create: boolean;
  stat: { uid: number; gid: number; mode: number } | null;
}

export interface RepairFacts {
  project: string;
  services: ServiceFact[];
  networks: NetworkFact[];
  portHolders: PortHolder[];
  mounts: MountFact[];
  home: HomeEntryFact[];
  /** Who runs nuwax: the owner the home's files must have. */
  user: Ownership;
  /** Only root may chown. */
  root: boolean;
}

export type RepairAction =
  | { type: 'stop' }
  | { type: 'remove_network'; name: string }
  | { type: 'start' }
  | { type: 'wait_health' }
  | { type: 'mkdir'; path: string; mode: number; owner: Ownership | null }
  | { type: 'chown'; path: string; owner: Ownership }
  | { type: 'chmod'; path: string; mode: number };

export interface RepairPlan {
  kind: RepairKind;
  /** What was found, one line each; the problems and what is fine. */
  findings: string[];
  actions: RepairAction[];
}

export type ActionStatus = 'planned' | 'done' | 'failed' | 'skipped';

export interface ActionOutcome {
  action: RepairAction;
  description: string;
  status: ActionStatus;
  error?: { code: string; message: string };
}

export interface RepairRun {
  kind: RepairKind;
  findings: string[];
  actions: ActionOutcome[];
  /** Services still not up after the repair's health wait (critical ones first). */
  unhealthy?: string[];
}
