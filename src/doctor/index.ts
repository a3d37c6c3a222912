import { constants } from 'node:fs';
import { access, mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Config, HomePaths } from '../config/index.js';
import { exists, formatBytes, freeBytes } from '../fsutil/index.js';
import type { Store } from '../state/index.js';
import { checkForUpdate } from '../upgrade/index.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';
export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  detail: string;
}
export type Verdict = 'READY' | 'READY_WITH_WARNINGS' | 'NOT_READY';

/** What doctor needs of Docker, narrowed so it can be handed a runtime (or none). */
export interface DoctorRuntime {
  dockerAvailable(): Promise<boolean>;
  composeDescription(): Promise<string>;
  validate(composeFile: string): Promise<void>;
  ownContainersPorts(): Promise<string[]>;
}

export interface DoctorOptions {
  config: Config;
  paths: HomePaths;
  store: Store;
  runtime: DoctorRuntime;
  clientVersion: string;
  now?: () => Date;
}

export function verdictOf(checks: DoctorCheck[]): Verdict {
  if (checks.some((check) => check.status === 'fail')) return 'NOT_READY';
  return checks.some((check) => check.status === 'warn') ? 'READY_WITH_WARNINGS' : 'READY';
}

async function attempt(name: string, work: () => Promise<Omit<DoctorCheck, 'name'>>): Promise<DoctorCheck> {
  try {
    return { name, ...(await work()) };
  } catch (error) {
    return { name, status: 'fail', detail: (error as Error).message };
  }
}

/** Ports the compose file publishes (`- "8080:80"`, `- 127.0.0.1:8080:80`), best effort without a YAML parser. */
export function publishedPorts(composeText: string): number[] {
  const ports = new Set<number>();
  for (const match of composeText.matchAll(/^\s*-\s*["']?(?:[\d.]+:)?(\d{2,5}):\d{1,5}(?:\/\w+)?["']?\s*$/gm)) ports.add(Number(match[1]));
  for (const match of composeText.matchAll(/published:\s*["']?(\d{2,5})/g)) ports.add(Number(match[1]));
  return [...ports];
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

/** `nuwax doctor` (issue 7): one line per check and a verdict. */
export async function runDoctor(options: DoctorOptions): Promise<{ verdict: Verdict; checks: DoctorCheck[] }> {
  const { config, paths, runtime } = options;
  const checks: DoctorCheck[] = [];
  const docker = await attempt('docker', async () => ((await runtime.dockerAvailable()) ? { status: 'ok', detail: 'Docker engine reachable' } : { status: 'fail', detail: 'Docker engine not reachable (is dockerd running? permissions on /var/run/docker.sock?)' }));
  checks.push(docker);
  checks.push(await attempt('compose', async () => ({ status: 'ok', detail: await runtime.composeDescription() })));
  checks.push(
    await attempt('compose file', async () => {
      if (!(await exists(paths.composeFile))) return { status: 'warn', detail: `${paths.composeFile} missing: the next upgrade is a full install` };
      await runtime.validate(paths.composeFile);
      return { status: 'ok', detail: `${paths.composeFile} is valid` };
    }),
  );
  checks.push(
    await attempt('home writable', async () => {
      await mkdir(paths.dataDir, { recursive: true });
      await access(paths.home, constants.W_OK);
      return { status: 'ok', detail: `${paths.home} is writable` };
    }),
  );
  let nextSize: number | null = null;
  checks.push(
    await attempt('server', async () => {
      const check = await checkForUpdate({ config, paths, store: options.store, clientVersion: options.clientVersion });
      nextSize = check.decision.strategy === 'none' ? 0 : check.decision.package.size;
      const signed = check.fetched.signed ? 'signed and verified' : 'NOT signed-checked';
      return { status: 'ok', detail: `manifest ${check.fetched.manifest.version} valid, ${signed}; strategy ${check.decision.strategy}` };
    }),
  );
  checks.push(
    await attempt('signature', async () =>
      config.security.public_keys.length > 0 ? { status: 'ok', detail: `${config.security.public_keys.length} public key(s) configured` } : { status: 'warn', detail: 'no security.public_keys configured: manifests are not authenticated' },
    ),
  );
  checks.push(
    await attempt('disk', async () => {
      const free = await freeBytes(paths.home);
      const needed = (nextSize ?? 0) * 4 + 512 * 1024 * 1024;
      const detail = `${formatBytes(free)} free; the next release and its backup need about ${formatBytes(needed)}`;
      return { status: free >= needed ? 'ok' : 'fail', detail };
    }),
  );
  checks.push(
    await attempt('clock', async () => {
      const year = (options.now?.() ?? new Date()).getUTCFullYear();
      return year >= 2024 && year < 2100 ? { status: 'ok', detail: `clock says ${(options.now?.() ?? new Date()).toISOString()}` } : { status: 'fail', detail: 'the clock is not set: signatures expiry and TLS will fail' };
    }),
  );
  checks.push(
    await attempt('ports', async () => {
      if (!(await exists(paths.composeFile))) return { status: 'ok', detail: 'no compose file' };
      const ports = publishedPorts(await readFile(paths.composeFile, 'utf8'));
      const ours = new Set(docker.status === 'ok' ? await runtime.ownContainersPorts() : []);
      const busy: number[] = [];
      for (const port of ports) if (!ours.has(String(port)) && !(await portFree(port))) busy.push(port);
      return busy.length ? { status: 'fail', detail: `ports held by another process: ${busy.join(', ')}` } : { status: 'ok', detail: ports.length ? `ports ${ports.join(', ')} free or ours` : 'no published ports' };
    }),
  );
  return { verdict: verdictOf(checks), checks };
}
