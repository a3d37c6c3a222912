import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { HomePaths } from '../config/index.js';
import { portsFromComposeJson, portsFromComposeYaml, probePort } from '../doctor/index.js';
import { portHolder } from './holders.js';
import { mountsFromComposeJson, mountsFromComposeYaml, parseUser } from './mounts.js';
import type {
  HomeEntryFact,
  MountFact,
  NetworkFact,
  PortHolder,
  RepairFacts,
  RepairKind,
  ServiceFact,
} from './types.js';

/** What a container's inspect output tells the repair. */
export interface ContainerView {
  service: string;
  id: string;
  state: string;
  running: boolean;
  health: string | null;
  /** Network name → the id the container was attached to. */
  networks: Record<string, string>;
}

/** The Docker side of a repair, narrowed so a test can hand it anything (STYLE: collaborators passed in). */
export interface RepairDocker {
  projectName(): Promise<string>;
  services(): Promise<string[]>;
  containers(): Promise<ContainerView[]>;
  /** The project's networks (by compose's label). */
  networks(): Promise<NetworkFact[]>;
  /** Ids of every network the engine has. */
  networkIds(): Promise<Set<string>>;
  composeConfig(): Promise<{ format: 'json' | 'yaml'; text: string }>;
  /** `port/protocol` published by our own running containers. */
  ownPorts(): Promise<string[]>;
  stop(signal?: AbortSignal): Promise<void>;
  start(signal?: AbortSignal): Promise<void>;
  removeNetwork(name: string): Promise<void>;
  /** Waits for health; the services that are still not healthy (critical ones first). */
  waitHealth(signal?: AbortSignal): Promise<string[]>;
}

export interface GatherOptions {
  docker: RepairDocker;
  paths: HomePaths;
  /** `[health] critical`; default all. */
  critical?: string[];
  /** `[upgrade] protected`, relative to docker/. */
  protectedPaths: string[];
}

async function statOrNull(file: string) {
  try {
    return await stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

async function gatherServices(
  docker: RepairDocker,
  criticalNames: string[] | undefined,
  networkIds: Set<string> | null,
): Promise<ServiceFact[]> {
  const [names, containers] = await Promise.all([docker.services(), docker.containers()]);
  const critical = new Set(criticalNames ?? names);
  return names.map((service) => {
    const container = containers.find((item) => item.service === service);
    const up = container?.running === true && container.health !== 'unhealthy';
    const missingNetworks =
      container && networkIds
        ? Object.entries(container.networks)
            .filter(([name, id]) => name !== 'host' && id !== '' && !networkIds.has(id))
            .map(([name]) => name)
        : [];
    return {
      service,
      critical: critical.has(service),
      container: container?.id.slice(0, 12) ?? null,
      state: container?.state ?? 'missing',
      up,
      missingNetworks,
    };
  });
}

async function gatherPortHolders(docker: RepairDocker): Promise<PortHolder[]> {
  const config = await docker.composeConfig();
  const { ports } = config.format === 'json' ? portsFromComposeJson(config.text) : portsFromComposeYaml(config.text);
  const ours = new Set(await docker.ownPorts());
  const holders: PortHolder[] = [];
  for (const port of ports) {
    if (ours.has(`${port.port}/${port.protocol}`)) continue;
    const result = await probePort(port.hostIp, port.port, port.protocol).catch(() => 'error' as const);
    if (result !== 'in_use') continue;
    const holder = await portHolder(port.port, port.protocol);
    holders.push({ ...port, pid: holder?.pid ?? null, command: holder?.command ?? null });
  }
  return holders;
}

function inside(parent: string, child: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

async function gatherMounts(options: GatherOptions): Promise<MountFact[]> {
  const config = await options.docker.composeConfig();
  const services = config.format === 'json' ? mountsFromComposeJson(config.text) : mountsFromComposeYaml(config.text);
  const protectedRoots = options.protectedPaths.map((item) => path.resolve(options.paths.dockerDir, item));
  const mounts: MountFact[] = [];
  for (const service of services) {
    for (const source of service.sources) {
      const info = await statOrNull(source);
      mounts.push({
        service: service.service,
        source,
        user: parseUser(service.user),
        protected: protectedRoots.some((root) => inside(root, source)),
        stat: info && { directory: info.isDirectory(), uid: info.uid, gid: info.gid, mode: info.mode & 0o7777 },
      });
    }
  }
  return mounts;
}

/** The home's own folders and files (SPEC 1), with what nuwax needs of each. */
async function gatherHome(paths: HomePaths): Promise<HomeEntryFact[]> {
  const wanted: Array<Omit<HomeEntryFact, 'stat'>> = [
    { path: paths.home, kind: 'directory', mode: 0o700, exact: false, create: false },
    { path: paths.configFile, kind: 'file', mode: 0o600, exact: false, create: false },
    { path: paths.dataDir, kind: 'directory', mode: 0o700, exact: false, create: true },
    { path: paths.dbFile, kind: 'file', mode: 0o600, exact: false, create: false },
    { path: `${paths.dbFile}-wal`, kind: 'file', mode: 0o600, exact: false, create: false },
    { path: `${paths.dbFile}-shm`, kind: 'file', mode: 0o600, exact: false, create: false },
    { path: paths.backupsDir, kind: 'directory', mode: 0o700, exact: true, create: true },
    { path: paths.cacheDir, kind: 'directory', mode: 0o700, exact: false, create: true },
    { path: paths.downloadsDir, kind: 'directory', mode: 0o700, exact: false, create: true },
    { path: paths.logsDir, kind: 'directory', mode: 0o700, exact: false, create: true },
  ];
  // Backups are private (SPEC 1: files 0600).
  const backups = await readdir(paths.backupsDir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  for (const entry of backups)
    if (entry.isFile())
      wanted.push({
        path: path.join(paths.backupsDir, entry.name),
        kind: 'file',
        mode: 0o600,
        exact: true,
        create: false,
      });
  const entries: HomeEntryFact[] = [];
  for (const item of wanted) {
    const info = await statOrNull(item.path);
    entries.push({ ...item, stat: info && { uid: info.uid, gid: info.gid, mode: info.mode & 0o7777 } });
  }
  return entries;
}

/** The facts one kind of repair plans from; what that kind does not need stays empty. */
export async function gatherRepairFacts(kind: RepairKind, options: GatherOptions): Promise<RepairFacts> {
  const user = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const facts: RepairFacts = {
    project: '',
    services: [],
    networks: [],
    portHolders: [],
    mounts: [],
    home: [],
    user,
    root: user.uid === 0,
  };
  if (kind === 'permissions') {
    facts.home = await gatherHome(options.paths);
    return facts;
  }
  if (kind === 'volumes') {
    facts.mounts = await gatherMounts(options);
    return facts;
  }
  facts.project = await options.docker.projectName();
  const network = kind === 'network';
  facts.networks = network ? await options.docker.networks() : [];
  const networkIds = network ? await options.docker.networkIds() : null;
  facts.services = await gatherServices(options.docker, options.critical, networkIds);
  if (kind === 'failed-startup') facts.portHolders = await gatherPortHolders(options.docker);
  return facts;
}

/** The critical services that are down now: the daemon's watch asks only this. */
export async function criticalServicesDown(docker: RepairDocker, critical?: string[]): Promise<string[]> {
  const services = await gatherServices(docker, critical, null);
  return services.filter((service) => service.critical && !service.up).map((service) => service.service);
}
