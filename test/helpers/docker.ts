/**
 * Docker helpers for the runtime and end-to-end tests, against the real engine: images are made with
 * `docker import` from /bin/busybox (there is no registry here), services use host networking and
 * listen on 127.0.0.1, health is busybox `wget` against busybox `httpd`.
 *
 * Docker reachable → the tests run. Not reachable → they are skipped, unless NUWAX_REQUIRE_DOCKER=1
 * (CI), where they fail: a CI run must never pass by skipping the Docker tests.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import tarStream from 'tar-stream';
import { dockerAvailable as engineAnswers } from '../../src/runtime/index.js';

export const DOCKER_REQUIRED = process.env.NUWAX_REQUIRE_DOCKER === '1';

let availability: Promise<boolean> | undefined;

/** Whether a Docker engine answers; asked once per test process. */
export function dockerAvailable(): Promise<boolean> {
  availability ??= engineAnswers();
  return availability;
}

/** Per test: true to go on; false after marking the test skipped; fails when NUWAX_REQUIRE_DOCKER=1. */
export async function requireDockerOrSkip(t: TestContext): Promise<boolean> {
  if (await dockerAvailable()) return true;
  if (DOCKER_REQUIRED)
    assert.fail('Docker is not reachable and NUWAX_REQUIRE_DOCKER=1: run scripts/provision-docker.sh');
  t.skip('Docker is not reachable (set NUWAX_REQUIRE_DOCKER=1 to fail instead)');
  return false;
}

/** For `describe(name, await dockerSuite(), ...)`: skips the suite, or throws (fails the file) when Docker is required. */
export async function dockerSuite(): Promise<{ skip?: string }> {
  if (await dockerAvailable()) return {};
  if (DOCKER_REQUIRED)
    throw new Error('Docker is not reachable and NUWAX_REQUIRE_DOCKER=1: run scripts/provision-docker.sh');
  return { skip: 'Docker is not reachable (set NUWAX_REQUIRE_DOCKER=1 to fail instead)' };
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with optional stdin bytes; never throws for a non-zero exit. */
export function run(
  command: string,
  args: string[],
  options: { input?: Buffer; timeoutMs?: number } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 120_000,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input);
  });
}

/** Runs a docker command that must succeed; returns its trimmed stdout. */
export async function docker(args: string[], input?: Buffer): Promise<string> {
  const result = await run('docker', args, input ? { input } : {});
  if (result.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** `prefix-<pid>-<random>`, lowercase, valid as a compose project, a tag or a container name. */
export function uniqueName(prefix: string): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9-]/g, '');
  return `${clean}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A free TCP port on 127.0.0.1 in a high random range (host networking shares the host's ports). */
/**
 * Ports the kernel never hands out on its own: below the ephemeral range (32768 on Linux by
 * default), a port found free here cannot be taken meanwhile by another test's outgoing connection
 * or `listen(0)`, as one in 20000-60000 once was between this probe and doctor's.
 */
function portsOutsideEphemeral(): [number, number] {
  let low = 32_768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: the default range
  }
  return [10_000, Math.max(10_001, Math.min(low, 65_536))];
}

export async function freePort(): Promise<number> {
  const [from, to] = portsOutsideEphemeral();
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = from + Math.floor(Math.random() * (to - from));
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port found in ${from}-${to - 1}`);
}

let rootfs: Promise<Buffer> | undefined;

type TarHeader = Partial<tarStream.Header> & { name: string };

async function packEntries(entries: Array<{ header: TarHeader; body?: Buffer }>): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const entry of entries) {
    if (entry.body) pack.entry(entry.header, entry.body);
    else pack.entry(entry.header);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A root filesystem of /bin/busybox and its applet links (`busybox --list`), built once. */
function busyboxRootfs(): Promise<Buffer> {
  rootfs ??= (async () => {
    const busybox = await readFile('/bin/busybox');
    const applets = (await run('/bin/busybox', ['--list'])).stdout
      .split('\n')
      .filter((name) => name && name !== 'busybox');
    return packEntries([
      ...['bin', 'etc', 'www', 'data'].map((name) => ({
        header: { name: `${name}/`, type: 'directory' as const, mode: 0o755 },
      })),
      { header: { name: 'tmp/', type: 'directory', mode: 0o1777 } },
      { header: { name: 'bin/busybox', mode: 0o755, size: busybox.length }, body: busybox },
      ...applets.map((name) => ({ header: { name: `bin/${name}`, type: 'symlink' as const, linkname: 'busybox' } })),
    ]);
  })();
  return rootfs;
}

async function readTar(buffer: Buffer): Promise<Array<{ header: TarHeader; body: Buffer }>> {
  const extract = tarStream.extract();
  const entries: Array<{ header: TarHeader; body: Buffer }> = [];
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.push({ header: entry.header, body: Buffer.concat(chunks) });
    }
  })();
  extract.end(buffer);
  await reading;
  return entries;
}

/**
 * Rewrites a `docker save` archive so its image says it is built for another architecture: the
 * engine here is amd64 and `docker import --platform` is ignored, so an arm64 image is made by
 * editing the config's "architecture" (the image ID is the config's digest, so it changes too).
 */
async function retargetArchive(archive: Buffer, tag: string, arch: string): Promise<Buffer> {
  const entries = await readTar(archive);
  const manifestEntry = entries.find((entry) => entry.header.name === 'manifest.json')!;
  const manifest = JSON.parse(manifestEntry.body.toString('utf8')) as Array<{
    Config: string;
    RepoTags: string[] | null;
  }>;
  const configEntry = entries.find((entry) => entry.header.name === manifest[0]!.Config)!;
  const config = JSON.parse(configEntry.body.toString('utf8')) as Record<string, unknown>;
  config['architecture'] = arch;
  if (arch === 'arm64') config['variant'] = 'v8';
  const body = Buffer.from(JSON.stringify(config));
  const name = `${createHash('sha256').update(body).digest('hex')}.json`;
  configEntry.body = body;
  configEntry.header = { ...configEntry.header, name, size: body.length };
  manifest[0]!.Config = name;
  manifest[0]!.RepoTags = [tag];
  manifestEntry.body = Buffer.from(JSON.stringify(manifest));
  manifestEntry.header = { ...manifestEntry.header, size: manifestEntry.body.length };
  return packEntries(entries.filter((entry) => entry.header.name !== 'repositories'));
}

/**
 * `docker import` a busybox image under `tag`; returns its ID. With `arch: 'arm64'` the image's
 * config says arm64 (it cannot run here; it is for the wrong-arch checks).
 */
export async function buildBusyboxImage(tag: string, options: { arch?: 'amd64' | 'arm64' } = {}): Promise<string> {
  const tar = await busyboxRootfs();
  if ((options.arch ?? 'amd64') === 'amd64') return docker(['import', '--change', 'ENV PATH=/bin', '-', tag], tar);
  const temporary = `${tag}-import-${Math.random().toString(36).slice(2, 8)}`;
  await docker(['import', '--change', 'ENV PATH=/bin', '-', temporary], tar);
  try {
    const archive = await new Promise<Buffer>((resolve, reject) => {
      const child = spawn('docker', ['save', temporary], { stdio: ['ignore', 'pipe', 'inherit'] });
      const chunks: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`docker save exited ${code}`)),
      );
    });
    await docker(['load'], await retargetArchive(archive, tag, options.arch!));
    return docker(['image', 'inspect', '--format', '{{.Id}}', tag]);
  } finally {
    await run('docker', ['rmi', temporary]);
  }
}

/** `docker save` one or more references into one archive (what a release's images/ holds). */
export async function saveImage(references: string | string[], file: string): Promise<void> {
  await docker(['save', '-o', file, ...(Array.isArray(references) ? references : [references])]);
}

export async function imageId(reference: string): Promise<string | null> {
  const result = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', reference]);
  return result.code === 0 ? result.stdout.trim() : null;
}

export async function removeImages(references: string[]): Promise<void> {
  for (const reference of references) await run('docker', ['rmi', '-f', reference]);
}

/** Removes every container and network of a compose project, whatever state it is in. */
export async function removeProject(project: string): Promise<void> {
  const filter = `label=com.docker.compose.project=${project}`;
  const containers = (await run('docker', ['ps', '-aq', '--filter', filter])).stdout.split('\n').filter(Boolean);
  if (containers.length) await run('docker', ['rm', '-f', '-v', ...containers]);
  const networks = (await run('docker', ['network', 'ls', '-q', '--filter', filter])).stdout
    .split('\n')
    .filter(Boolean);
  if (networks.length) await run('docker', ['network', 'rm', ...networks]);
}

export interface ContainerState {
  id: string;
  service: string;
  status: string;
  running: boolean;
  exitCode: number;
  restartCount: number;
}

/** The project's containers as the engine sees them, to assert the state after an operation. */
export async function projectContainers(project: string): Promise<ContainerState[]> {
  // A container removed between the listing and the inspect (compose recreating it while a test
  // polls) is listed again, not a failure.
  for (let attempt = 1; ; attempt += 1) {
    const ids = (await run('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`])).stdout
      .split('\n')
      .filter(Boolean);
    if (ids.length === 0) return [];
    const inspect = await run('docker', ['inspect', ...ids]);
    if (inspect.code !== 0 && /No such object/.test(inspect.stderr) && attempt < 5) continue;
    if (inspect.code !== 0) throw new Error(`docker inspect exited ${inspect.code}: ${inspect.stderr.trim()}`);
    return containerStates(inspect.stdout);
  }
}

function containerStates(json: string): ContainerState[] {
  const inspected = JSON.parse(json) as Array<{
    Id: string;
    RestartCount: number;
    Config: { Labels: Record<string, string> };
    State: { Status: string; Running: boolean; ExitCode: number };
  }>;
  return inspected.map((item) => ({
    id: item.Id,
    service: item.Config.Labels['com.docker.compose.service'] ?? '',
    status: item.State.Status,
    running: item.State.Running,
    exitCode: item.State.ExitCode,
    restartCount: item.RestartCount,
  }));
}

export interface HealthcheckSpec {
  test: string[];
  interval?: string;
  timeout?: string;
  retries?: number;
  startPeriod?: string;
}

export interface ServiceSpec {
  image: string;
  /** An argument list, or a string run by `sh -c`. */
  command?: string[] | string;
  restart?: 'no' | 'always' | 'unless-stopped' | 'on-failure' | `on-failure:${number}`;
  healthcheck?: HealthcheckSpec;
  memLimit?: string;
  /** docker-init as PID 1 forwards SIGTERM, so `down` does not wait its 10 s for busybox; default true. */
  init?: boolean;
  volumes?: string[];
  environment?: Record<string, string>;
  /** Any other compose keys, written as they are. */
  extra?: Record<string, unknown>;
}

/** One YAML line per key; values are JSON, which YAML reads as flow style. */
function serviceYaml(name: string, spec: ServiceSpec): string {
  const keys: Record<string, unknown> = {
    image: spec.image,
    network_mode: 'host',
    command: typeof spec.command === 'string' ? ['sh', '-c', spec.command] : spec.command,
    restart: spec.restart ?? 'no',
    init: spec.init ?? true,
    mem_limit: spec.memLimit,
    volumes: spec.volumes,
    environment: spec.environment,
    healthcheck: spec.healthcheck && {
      test: spec.healthcheck.test,
      interval: spec.healthcheck.interval ?? '1s',
      timeout: spec.healthcheck.timeout ?? '2s',
      retries: spec.healthcheck.retries ?? 2,
      start_period: spec.healthcheck.startPeriod ?? '1s',
    },
    ...spec.extra,
  };
  const lines = Object.entries(keys)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `    ${key}: ${JSON.stringify(value)}`);
  return `  ${name}:\n${lines.join('\n')}\n`;
}

/** Writes `docker-compose.yml` (format 2.4, which compose v1 and v2 both read) into dir; returns its path. */
export async function writeComposeProject(
  dir: string,
  services: Record<string, ServiceSpec>,
  options: { fileName?: string } = {},
): Promise<string> {
  const file = path.join(dir, options.fileName ?? 'docker-compose.yml');
  const body = Object.entries(services)
    .map(([name, spec]) => serviceYaml(name, spec))
    .join('');
  await writeFile(file, `version: "2.4"\nservices:\n${body}`);
  return file;
}

/** A wget HEALTHCHECK against 127.0.0.1:port/path, every second. */
export function httpHealthcheck(port: number, urlPath = '/index.html'): HealthcheckSpec {
  return { test: ['CMD', 'wget', '-q', '-O', '/dev/null', `http://127.0.0.1:${port}${urlPath}`] };
}

/** busybox httpd on 127.0.0.1:port serving `/www/index.html` = `page`, with a HEALTHCHECK on `healthPath`. */
export function httpService(
  image: string,
  port: number,
  options: { page?: string; healthPath?: string; restart?: ServiceSpec['restart'] } = {},
): ServiceSpec {
  const page = (options.page ?? 'ok').replace(/'/g, '');
  return {
    image,
    command: `echo '${page}' > /www/index.html && exec httpd -f -p 127.0.0.1:${port} -h /www`,
    restart: options.restart ?? 'unless-stopped',
    healthcheck: httpHealthcheck(port, options.healthPath ?? '/index.html'),
  };
}

/** A long-running service with no HEALTHCHECK (healthy after the settle time). */
export function loopService(image: string): ServiceSpec {
  return { image, command: 'trap "exit 0" TERM; while true; do sleep 1; done', restart: 'unless-stopped' };
}

/** A one-shot job: runs once and exits with `exitCode`. */
export function oneShotService(image: string, exitCode = 0, script = 'echo job done'): ServiceSpec {
  return { image, command: `${script}; exit ${exitCode}`, restart: 'no' };
}
