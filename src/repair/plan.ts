import type {
  HomeEntryFact,
  MountFact,
  Ownership,
  RepairAction,
  RepairFacts,
  RepairKind,
  RepairPlan,
} from './types.js';

const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`;
const owner = (value: Ownership) => `${value.uid}:${value.gid}`;

/** One line for an action, as `--dry-run` prints it and the history records it. */
export function describeAction(action: RepairAction): string {
  switch (action.type) {
    case 'stop':
      return 'stop the application (compose down: containers and networks; volumes and data kept)';
    case 'remove_network':
      return `remove the network ${action.name}`;
    case 'start':
      return 'start the application (compose up -d, in its dependency order)';
    case 'wait_health':
      return 'wait until the services are healthy';
    case 'mkdir':
      return (
        `create ${action.path} (mode ${octal(action.mode)}` + `${action.owner ? `, owner ${owner(action.owner)}` : ''})`
      );
    case 'chown':
      return `give ${action.path} to ${owner(action.owner)}`;
    case 'chmod':
      return `set the mode of ${action.path} to ${octal(action.mode)}`;
  }
}

const RESTART: RepairAction[] = [{ type: 'stop' }, { type: 'start' }, { type: 'wait_health' }];

function describeDown(facts: RepairFacts): string[] {
  return facts.services
    .filter((service) => !service.up)
    .map(
      (service) =>
        `${service.critical ? 'critical' : 'non-critical'} service ${service.service} is down (${service.state})`,
    );
}

function planFailedStartup(facts: RepairFacts): RepairPlan {
  const findings = describeDown(facts);
  for (const holder of facts.portHolders) {
    const who = holder.pid === null ? 'a process nuwax cannot name' : `pid ${holder.pid} (${holder.command ?? '?'})`;
    findings.push(`port ${holder.port}/${holder.protocol} of ${holder.service} is held by ${who}: stop it first`);
  }
  const down = facts.services.some((service) => !service.up);
  if (!down) findings.push(`every service of ${facts.project} runs`);
  return { kind: 'failed-startup', findings, actions: down ? RESTART : [] };
}

function planNetwork(facts: RepairFacts): RepairPlan {
  const findings = facts.services.flatMap((service) =>
    service.missingNetworks.map((name) => `${service.service} is attached to the network ${name}, which is gone`),
  );
  const broken = findings.length > 0;
  findings.push(
    facts.networks.length
      ? `networks of ${facts.project}: ${facts.networks.map((network) => network.name).join(', ')}`
      : `${facts.project} has no network in the engine`,
  );
  if (!broken) return { kind: 'network', findings, actions: [] };
  const actions: RepairAction[] = [
    { type: 'stop' },
    ...facts.networks.map((network): RepairAction => ({ type: 'remove_network', name: network.name })),
    { type: 'start' },
    { type: 'wait_health' },
  ];
  return { kind: 'network', findings, actions };
}

/** Docker creates a missing bind source as root 0755; a `user:` service then cannot write it. */
const MOUNT_MODE = 0o755;

function planMount(mount: MountFact, findings: string[], actions: RepairAction[]): void {
  const { source, user, stat } = mount;
  if (stat === null) {
    findings.push(`bind-mount source ${source} of ${mount.service} is missing`);
    actions.push({ type: 'mkdir', path: source, mode: MOUNT_MODE, owner: user });
    return;
  }
  if (!stat.directory || user === null || (stat.uid === user.uid && stat.gid === user.gid)) return;
  const what = `${source} of ${mount.service} is owned by ${stat.uid}:${stat.gid}, the service runs as ${owner(user)}`;
  // An existing source inside data/ is the application's data: reported, never changed.
  if (mount.protected) findings.push(`${what}; left as it is (protected path)`);
  else {
    findings.push(what);
    actions.push({ type: 'chown', path: source, owner: user });
  }
}

function planVolumes(facts: RepairFacts): RepairPlan {
  const findings: string[] = [];
  const actions: RepairAction[] = [];
  for (const mount of facts.mounts) planMount(mount, findings, actions);
  if (actions.length === 0 && findings.length === 0)
    findings.push(
      facts.mounts.length
        ? `${facts.mounts.length} bind-mount source(s) present`
        : 'the compose file has no bind mounts',
    );
  return { kind: 'volumes', findings, actions };
}

function planHomeEntry(entry: HomeEntryFact, facts: RepairFacts, findings: string[], actions: RepairAction[]): void {
  if (entry.stat === null) {
    if (!entry.create) return;
    findings.push(`${entry.path} is missing`);
    actions.push({ type: 'mkdir', path: entry.path, mode: entry.mode, owner: null });
    return;
  }
  const { uid, gid, mode } = entry.stat;
  if (uid !== facts.user.uid) {
    const what = `${entry.path} is owned by ${uid}:${gid}, nuwax runs as ${owner(facts.user)}`;
    if (facts.root) {
      findings.push(what);
      actions.push({ type: 'chown', path: entry.path, owner: facts.user });
    } else findings.push(`${what}: run nuwax repair permissions as root to change the owner`);
  }
  const wanted = entry.exact ? entry.mode : (mode | entry.mode) & 0o7777;
  if ((mode & 0o7777) !== wanted) {
    findings.push(`${entry.path} has mode ${octal(mode)}, nuwax needs ${octal(wanted)}`);
    actions.push({ type: 'chmod', path: entry.path, mode: wanted });
  }
}

function planPermissions(facts: RepairFacts): RepairPlan {
  const findings: string[] = [];
  const actions: RepairAction[] = [];
  for (const entry of facts.home) planHomeEntry(entry, facts, findings, actions);
  if (findings.length === 0) findings.push("the home's folders and files are owned and writable as nuwax needs");
  return { kind: 'permissions', findings, actions };
}

const PLANNERS: Record<RepairKind, (facts: RepairFacts) => RepairPlan> = {
  'failed-startup': planFailedStartup,
  network: planNetwork,
  volumes: planVolumes,
  permissions: planPermissions,
};

/** What a repair would do on a box in this state: a pure function, tested by a table. */
export function planRepair(kind: RepairKind, facts: RepairFacts): RepairPlan {
  return PLANNERS[kind](facts);
}
