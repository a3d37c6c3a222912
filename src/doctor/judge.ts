import { formatBytes } from '../fsutil/index.js';
import type { LiveService } from '../services/index.js';
import type {
  CheckStatus,
  ClockFact,
  ComposeFact,
  ComposeFileFact,
  DiskFact,
  DockerFact,
  DoctorCheck,
  DoctorFacts,
  DoctorReport,
  HomeFact,
  ManifestFact,
  PortProbe,
  PortsFact,
  ServerFact,
  ServicesFact,
  Verdict,
} from './types.js';

/** Kept free on top of every estimate, as the upgrade itself does (src/upgrade/steps/loading-images.ts). */
export const DISK_MARGIN = 256 * 1024 * 1024;
/** Below this many times what is needed, space is "tight": enough today, not for a larger release. */
const TIGHT_FACTOR = 2;
/** Beyond this the clock is wrong enough to matter for `expires` and TLS. */
export const CLOCK_SKEW_LIMIT_MS = 5 * 60 * 1000;
/** Signatures and manifest expiry need a clock that has at least been set once. */
const EARLIEST_SANE_YEAR = 2024;
/** How many offending ports a line names before it says "and N more". */
const LISTED = 5;

export function verdictOf(checks: Array<Pick<DoctorCheck, 'status'>>): Verdict {
  if (checks.some((check) => check.status === 'fail')) return 'NOT_READY';
  return checks.some((check) => check.status === 'warn') ? 'READY_WITH_WARNINGS' : 'READY';
}

/** The exit code of `nuwax doctor`: 0 when the box can upgrade (with or without warnings), else 1. */
export function exitCodeOf(verdict: Verdict): number {
  return verdict === 'NOT_READY' ? 1 : 0;
}

function line(id: DoctorCheck['id'], title: string, status: CheckStatus, message: string, hint?: string): DoctorCheck {
  return hint ? { id, title, status, message, hint } : { id, title, status, message };
}

function listed(items: string[]): string {
  const shown = items.slice(0, LISTED).join(', ');
  return items.length > LISTED ? `${shown} and ${items.length - LISTED} more` : shown;
}

export function judgeDocker(fact: DockerFact): DoctorCheck {
  if (fact.reachable) return line('docker', 'Docker', 'ok', `Docker engine ${fact.version} reachable`);
  return line(
    'docker',
    'Docker',
    'fail',
    `Docker engine not reachable: ${fact.reason}`,
    'start the engine (systemctl start docker) and check that this user may use /var/run/docker.sock',
  );
}

export function judgeCompose(fact: ComposeFact): DoctorCheck {
  if (!fact.found)
    return line(
      'compose',
      'Compose',
      'fail',
      fact.reason,
      'install the compose plugin (docker-compose-plugin) or docker-compose',
    );
  const kind = fact.kind === 'v2' ? 'v2 plugin' : 'v1';
  return line('compose', 'Compose', 'ok', `${fact.command} ${fact.version} (${kind})`);
}

export function judgeComposeFile(fact: ComposeFileFact): DoctorCheck {
  switch (fact.state) {
    case 'valid':
      return line('compose_file', 'Compose file', 'ok', `${fact.path} is valid`);
    case 'missing':
      return line(
        'compose_file',
        'Compose file',
        'warn',
        `${fact.path} does not exist: the next upgrade installs the full release`,
      );
    case 'unchecked':
      return line('compose_file', 'Compose file', 'warn', `${fact.path} not checked: ${fact.reason}`);
    case 'invalid':
      return line(
        'compose_file',
        'Compose file',
        'fail',
        fact.reason,
        'fix the file (docker compose config shows the error)' +
          ', or reinstall the release with nuwax upgrade --force-full',
      );
    case 'unreadable':
      return line(
        'compose_file',
        'Compose file',
        'fail',
        `${fact.path} cannot be read (${fact.code})`,
        'it must be a file the user running nuwax can read' +
          ': fix its permissions, or reinstall the release with nuwax upgrade --force-full',
      );
  }
}

/** Needs of areas on one filesystem add up; each filesystem keeps the margin free. */
export function judgeDisk(fact: DiskFact): DoctorCheck {
  const devices = new Map<number, { directory: string; free: number; needed: number; whats: string[] }>();
  for (const area of fact.areas) {
    const device = devices.get(area.device) ?? {
      directory: area.directory,
      free: area.free,
      needed: DISK_MARGIN,
      whats: [],
    };
    for (const need of area.needs) {
      device.needed += need.bytes;
      if (need.bytes > 0) device.whats.push(`${need.what} ${formatBytes(need.bytes)}`);
    }
    devices.set(area.device, device);
  }
  const describe = (device: { directory: string; free: number; needed: number; whats: string[] }) =>
    `${formatBytes(device.free)} free in ${device.directory}; ` +
    `about ${formatBytes(device.needed)} needed ` +
    `(${[...device.whats, `margin ${formatBytes(DISK_MARGIN)}`].join(', ')})`;
  const all = [...devices.values()];
  const unmeasured = fact.errors.map((error) => `cannot ${error.what}: ${error.path} (${error.code})`);
  const short = all.find((device) => device.free < device.needed);
  if (short) {
    const also = unmeasured.length ? `; also ${listed(unmeasured)}` : '';
    return line(
      'disk',
      'Disk',
      'fail',
      `not enough space: ${describe(short)}${also}`,
      'free some space (nuwax backup prune, docker image prune)' +
        ' or move [backup] storage_dir / [cache] download_dir to a larger disk',
    );
  }
  // What could not be read is counted as nothing: the figures are a lower bound, so at best a warning.
  if (unmeasured.length) {
    const figures = all.length ? `; so far ${all.map(describe).join(' | ')}` : '';
    return line(
      'disk',
      'Disk',
      'warn',
      `${listed(unmeasured)}${figures}`,
      'run nuwax doctor as the user that runs upgrades (root for the daemon)' +
        ', and let that user read the named path: the backup reads every file',
    );
  }
  const tight = all.find((device) => device.free < device.needed * TIGHT_FACTOR);
  if (tight)
    return line(
      'disk',
      'Disk',
      'warn',
      `space is tight: ${describe(tight)}`,
      'free some space before a larger release arrives (nuwax backup prune, docker image prune)',
    );
  const { release } = fact;
  if (typeof release === 'object' && release.packageSize === null) {
    return line(
      'disk',
      'Disk',
      'warn',
      `the manifest gives no size for ${release.version}: only the backup is counted; ${describe(all[0]!)}`,
      'publish the package size in the manifest',
    );
  }
  const what =
    typeof release === 'object'
      ? `for ${release.version}`
      : release === 'none'
        ? 'for a backup (no newer release offered)'
        : 'for a backup (the next release is not known)';
  return line('disk', 'Disk', 'ok', `enough ${what}: ${all.map(describe).join(' | ')}`);
}

export function judgeHome(fact: HomeFact): DoctorCheck {
  const failing = fact.directories.filter((directory) => directory.error !== null);
  if (failing.length === 0)
    return line('home', 'Home', 'ok', `${fact.directories[0]?.path ?? 'home'} and its folders are writable`);
  return line(
    'home',
    'Home',
    'fail',
    `not writable: ${listed(failing.map((directory) => `${directory.path} (${directory.error})`))}`,
    'give the user running nuwax write access to the home and its data/, backups/ and cache/ folders',
  );
}

/** nuwax-cli's default server works, but a fleet should name its release server on purpose. */
export function judgeServer(fact: ServerFact): DoctorCheck {
  const check = judgeServerAnswer(fact);
  if (!fact.isDefault) return check;
  const note = "nuwax-cli's default release server (config.toml has no [server])";
  return {
    ...check,
    status: check.status === 'ok' ? 'warn' : check.status,
    message: `${check.message}; ${note}`,
    hint: check.hint ?? 'set [server] base_url or manifest_url in config.toml to name the release server',
  };
}

function judgeServerAnswer(fact: ServerFact): DoctorCheck {
  if (fact.error === null) return line('server', 'Server', 'ok', `release server answered at ${fact.url}`);
  // The supported air-gapped box: no server, and `nuwax upgrade` installs the release staged by import.
  if (fact.error.code === 'E_CONFIG' && fact.url === null && fact.staged) {
    return line(
      'server',
      'Server',
      'warn',
      `no release server configured: the next upgrade installs the staged release ${fact.staged}`,
      'bring later releases with nuwax import, or set [server] manifest_url or base_url in config.toml',
    );
  }
  // A server that fails while a release is staged: the upgrade installs that one (orchestrator fallback).
  if (fact.url !== null && fact.staged) {
    return line(
      'server',
      'Server',
      'warn',
      `${fact.error.message}; the next upgrade installs the staged release ${fact.staged}`,
      'later releases need the server (check the network, DNS and proxy, and [server] manifest_url) or nuwax import',
    );
  }
  const hint =
    fact.error.code === 'E_CONFIG'
      ? 'set [server] manifest_url or base_url in config.toml'
      : fact.error.code === 'E_HTTP'
        ? 'the server answers but not with the manifest: check [server] manifest_url and that the release is published'
        : 'check the network, DNS and proxy of this box, and [server] manifest_url';
  return line('server', 'Server', 'fail', fact.error.message, hint);
}

const MANIFEST_HINTS: Record<string, string> = {
  E_SIGNATURE:
    'the manifest or its .sig was changed, or signed with another key' +
    ': re-sign the release, or check [security] public_keys',
  E_MANIFEST: 'the server serves a malformed manifest: republish it with nuwax release manifest',
  E_MANIFEST_EXPIRED: 'publish a fresh manifest (or check this box clock)',
  E_CLIENT_TOO_OLD: 'update nuwax on this box first',
  E_UNVERIFIED: 'publish the package hash in the manifest, or set [security] allow_unverified = true',
  E_UNSUPPORTED_ARCH: 'this box architecture has no release: publish one for it',
  E_NO_PACKAGE: 'publish a package for this box architecture',
};

/** With `allow_unverified` on, a package without a SHA-256 installs: never a silent READY. */
export function judgeManifest(fact: ManifestFact, allowUnverified = false): DoctorCheck {
  const check = judgeManifestAnswer(fact);
  if (!allowUnverified || check.status === 'fail') return check;
  return {
    ...check,
    status: 'warn',
    message: `${check.message}; [security] allow_unverified = true: a package without a SHA-256 installs unverified`,
    hint: check.hint ?? 'publish SHA-256 hashes in the manifest and set [security] allow_unverified = false',
  };
}

function judgeManifestAnswer(fact: ManifestFact): DoctorCheck {
  if (fact.state === 'unchecked') return line('manifest', 'Manifest', 'warn', `not checked: ${fact.reason}`);
  if (fact.state === 'invalid')
    return line(
      'manifest',
      'Manifest',
      'fail',
      `${fact.error.code}: ${fact.error.message}`,
      MANIFEST_HINTS[fact.error.code] ?? 'check the release published on the server',
    );
  const next =
    fact.strategy === 'none'
      ? 'nothing to install'
      : `next: ${fact.strategy}${fact.packageSize !== null ? ` (${formatBytes(fact.packageSize)})` : ''}`;
  const about = `manifest ${fact.version} valid; installed ${fact.current ?? '(none)'}, ${next}`;
  if (fact.signed)
    return line(
      'manifest',
      'Manifest',
      'ok',
      `${about}; signature verified with ` +
        `${fact.keys === 1 ? 'the configured key' : `one of ${fact.keys} configured keys`}`,
    );
  return line(
    'manifest',
    'Manifest',
    'warn',
    `${about}; NOT authenticated: no [security] public_keys configured`,
    'add the release public key to [security] public_keys so a forged manifest is refused',
  );
}

function duration(ms: number): string {
  const seconds = Math.round(Math.abs(ms) / 1000);
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} days`;
}

export function judgeClock(fact: ClockFact): DoctorCheck {
  const hint = 'set the time and keep it synchronised (timedatectl set-ntp true)';
  if (fact.local.getUTCFullYear() < EARLIEST_SANE_YEAR) {
    return line(
      'clock',
      'Clock',
      'fail',
      `the clock says ${fact.local.toISOString()}: manifest expiry and TLS certificates cannot be checked`,
      hint,
    );
  }
  if (fact.server === null)
    return line('clock', 'Clock', 'ok', `${fact.local.toISOString()} (not compared: no Date from the release server)`);
  const skew = fact.local.getTime() - fact.server.getTime();
  const comparison = `${duration(skew)} ${skew >= 0 ? 'ahead of' : 'behind'} the release server`;
  if (Math.abs(skew) > CLOCK_SKEW_LIMIT_MS) return line('clock', 'Clock', 'warn', `the clock is ${comparison}`, hint);
  return line('clock', 'Clock', 'ok', `within ${duration(skew)} of the release server`);
}

function whyUnchecked(probe: PortProbe): string {
  if (probe.result === 'denied') return 'binding it needs root';
  if (probe.result === 'error') return `the probe failed (${probe.error ?? 'unknown error'})`;
  return `${probe.protocol} cannot be probed`;
}

function portName(probe: PortProbe): string {
  return `${probe.hostIp ? `${probe.hostIp}:` : ''}${probe.port}/${probe.protocol} (${probe.service})`;
}

export function judgePorts(fact: PortsFact): DoctorCheck {
  if (fact.state === 'unchecked')
    return line('ports', 'Ports', fact.warn ? 'warn' : 'ok', fact.warn ? `not checked: ${fact.reason}` : fact.reason);
  const ours = new Set(fact.ours ?? []);
  const isOurs = (probe: PortProbe) => probe.result === 'in_use' && ours.has(`${probe.port}/${probe.protocol}`);
  const foreign = fact.probes.filter((probe) => probe.result === 'in_use' && !isOurs(probe));
  const noAddress = fact.probes.filter((probe) => probe.result === 'no_address');
  const unknown = fact.probes.filter(
    (probe) => probe.result === 'denied' || probe.result === 'unsupported' || probe.result === 'error',
  );
  const hostNote = fact.hostNetwork.length
    ? `; host networking for ${listed(fact.hostNetwork)}` +
      `: the ports they use are not in the compose file and were not checked`
    : '';
  if (foreign.length || noAddress.length) {
    const parts: string[] = [];
    const whose = fact.ours === null ? ' (Docker not reachable: cannot tell whether by our own services)' : '';
    if (foreign.length) parts.push(`held by another process${whose}: ${listed(foreign.map(portName))}`);
    if (noAddress.length) parts.push(`host IP not on this box: ${listed(noAddress.map(portName))}`);
    return line(
      'ports',
      'Ports',
      'fail',
      parts.join('; '),
      'stop what holds the port (ss -lntup shows it)' +
        ' or publish another port in the compose file; a host IP must be an address of this box',
    );
  }
  if (unknown.length || fact.unreadable.length) {
    const parts: string[] = [];
    if (unknown.length)
      parts.push(`not checked: ${listed(unknown.map((probe) => `${portName(probe)}: ${whyUnchecked(probe)}`))}`);
    if (fact.unreadable.length) parts.push(`unreadable port entries: ${listed(fact.unreadable)}`);
    return line(
      'ports',
      'Ports',
      'warn',
      parts.join('; ') + hostNote,
      'run nuwax doctor as root to check privileged ports; write port entries compose can resolve',
    );
  }
  const held = fact.probes.filter(isOurs).length;
  if (fact.probes.length === 0) return line('ports', 'Ports', 'ok', `the compose file publishes no ports${hostNote}`);
  const free = fact.probes.length - held;
  return line(
    'ports',
    'Ports',
    'ok',
    `${fact.probes.length} published port${fact.probes.length === 1 ? '' : 's'}: ${free} free` +
      `${held ? `, ${held} held by our own services` : ''}${hostNote}`,
  );
}

/** The `nuwax repair` that fits a failed check; its hint names it. */
export const REPAIRS: Partial<Record<string, string>> = {
  home: 'permissions',
  ports: 'failed-startup',
  services: 'failed-startup',
};

export function withRepair(check: DoctorCheck): DoctorCheck {
  const repair = REPAIRS[check.id];
  if (check.status !== 'fail' || repair === undefined) return check;
  const hint = `nuwax repair ${repair} --dry-run shows what the repair would do`;
  return { ...check, hint: check.hint ? `${check.hint}; ${hint}` : hint };
}

function serviceList(services: LiveService[]): string {
  return listed(services.map((item) => `${item.service} ${item.detail}`));
}

/** A critical service down or unhealthy: the application does not work, whatever the rest says. */
export function judgeServices(fact: ServicesFact, compose: ComposeFact): DoctorCheck {
  if (!fact.seen) return line('services', 'Services', 'warn', `not checked: ${fact.reason}`);
  if (fact.services.length === 0)
    return line('services', 'Services', 'ok', `no container of project ${fact.project} exists: nothing is started yet`);
  const down = fact.services.filter((item) => item.down);
  const criticalDown = down.filter((item) => item.critical);
  const composeCommand = compose.found ? compose.command : 'docker compose';
  const hint =
    'look at its logs (docker logs <container>), then start it: ' + `${composeCommand} up -d in the docker folder`;
  if (criticalDown.length > 0)
    return line('services', 'Services', 'fail', `critical service down: ${serviceList(criticalDown)}`, hint);
  if (down.length > 0)
    return line('services', 'Services', 'warn', `non-critical service down: ${serviceList(down)}`, hint);
  const count = fact.services.length;
  return line(
    'services',
    'Services',
    'ok',
    `${count} service${count === 1 ? '' : 's'} up: ${serviceList(fact.services)}`,
  );
}

/** The whole of doctor's judgement: facts in, one line per check and the verdict out. */
export function judgeFacts(facts: DoctorFacts): DoctorReport {
  const judged = [
    judgeDocker(facts.docker),
    judgeCompose(facts.compose),
    judgeComposeFile(facts.composeFile),
    judgeDisk(facts.disk),
    judgeHome(facts.home),
    judgeServer(facts.server),
    judgeManifest(facts.manifest, facts.allowUnverified),
    judgeClock(facts.clock),
    judgePorts(facts.ports),
    judgeServices(facts.services, facts.compose),
  ];
  const checks = judged.map(withRepair);
  return { verdict: verdictOf(checks), checks };
}
