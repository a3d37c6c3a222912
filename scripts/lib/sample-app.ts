/**
 * A sample docker-compose application for the demo and the end-to-end tests: busybox images made
 * with `docker import` (there is no registry here), services on 127.0.0.1 with host networking.
 *   web    — critical, busybox httpd with a wget HEALTHCHECK
 *   worker — non-critical, a loop with no HEALTHCHECK (healthy once it has run for the settle time)
 *   init   — one-shot, exits 0
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface SampleVersion {
  version: string;
  port: number;
  /** The image tag the compose file names; its archive goes into images/. */
  imageTag: string;
  /** Body of web/index.html, to see which version serves. */
  page: string;
  /** Extra files, relative to docker/. */
  files?: Record<string, string>;
  /** Migration scripts: name → body. */
  migrations?: Record<string, string>;
  /** Make the web HEALTHCHECK fail (a broken release). */
  brokenWeb?: boolean;
  /** Make the worker exit 1 in a loop (a broken non-critical service). */
  brokenWorker?: boolean;
  /** The release drops the worker service. */
  withoutWorker?: boolean;
  /** Write a compose file that `docker compose up` rejects at start (a missing device). */
  brokenUp?: boolean;
  /** docker/traffic.sh: a maintenance flag while the services switch; `failing-off` as if the proxy were down. */
  traffic?: 'ok' | 'failing-off';
}

/**
 * The sample's traffic.sh: `off` writes data/maintenance.flag (a reverse proxy in front would serve a
 * maintenance page while it exists), `on` removes it. Each call is traced in ../traffic.log (the
 * home, outside what an upgrade or a restore touches) with whether web answered at that moment.
 */
export function trafficScript(port: number, mode: 'ok' | 'failing-off' = 'ok'): string {
  const failing =
    mode === 'failing-off' ? 'off) echo \'{"success": false, "error": "proxy unreachable"}\'; exit 1 ;;\n  ' : '';
  return `#!/bin/sh
# nuwax calls "./traffic.sh off --format=json" before the services stop, "on" once they are healthy.
state="$1"
if busybox wget -q -O /dev/null "http://127.0.0.1:${port}/index.html" 2>/dev/null; then web=up; else web=down; fi
echo "$state web=$web" >> ../traffic.log
mkdir -p data
case "$state" in
  ${failing}off) date > data/maintenance.flag ;;
  on) rm -f data/maintenance.flag ;;
  *) echo '{"success": false, "error": "usage: traffic.sh off|on"}'; exit 2 ;;
esac
echo '{"success": true}'
`;
}

function run(command: string, args: string[], input?: Buffer): string {
  const result = spawnSync(command, args, { input, maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr?.toString() ?? result.error}`);
  return result.stdout.toString();
}

/** `docker import` a rootfs of /bin/busybox and its applet links; returns the image id. */
export function importBusyboxImage(tag: string): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'nuwax-rootfs-'));
  try {
    const bin = path.join(root, 'bin');
    mkdirSync(bin, { recursive: true });
    for (const folder of ['tmp', 'www', 'data', 'etc']) mkdirSync(path.join(root, folder), { recursive: true });
    copyFileSync('/bin/busybox', path.join(bin, 'busybox'));
    chmodSync(path.join(bin, 'busybox'), 0o755);
    for (const applet of run('/bin/busybox', ['--list']).split('\n').filter(Boolean)) {
      if (applet !== 'busybox') symlinkSync('busybox', path.join(bin, applet));
    }
    const tar = spawnSync('tar', ['-C', root, '-c', '.'], { maxBuffer: 256 * 1024 * 1024 });
    return run('docker', ['import', '--change', 'ENV PATH=/bin', '-', tag], tar.stdout).trim();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export function composeFile(sample: SampleVersion): string {
  const port = sample.port;
  // A device that does not exist: `config -q` accepts the file, `up` fails when it creates the container.
  const devices = sample.brokenUp ? '\n    devices: ["/dev/nuwax-missing-device:/dev/missing"]' : '';
  const healthPath = sample.brokenWeb ? 'missing.txt' : 'index.html';
  const loop = sample.brokenWorker ? 'echo worker failing; exit 1' : 'while true; do sleep 1; done';
  const worker = sample.withoutWorker
    ? ''
    : `
  worker:
    image: ${sample.imageTag}
    command: ["sh", "-c", "${loop}"]
    network_mode: host
    restart: unless-stopped`;
  return `version: "2.4"
services:
  web:
    image: ${sample.imageTag}
    command: ["httpd", "-f", "-p", "127.0.0.1:${port}", "-h", "/www"]
    network_mode: host${devices}
    volumes: ["./web:/www:ro"]
    restart: unless-stopped
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:${sample.port}/${healthPath}"]
      interval: 1s
      timeout: 2s
      retries: 2
      start_period: 1s${worker}
  init:
    image: ${sample.imageTag}
    command: ["sh", "-c", "echo init ${sample.version} >> /data/init.log"]
    network_mode: host
    volumes: ["./data:/data"]
    restart: "no"
`;
}

/** Writes a deployment folder for one version (what `release pack` takes), with its image archive. */
export function writeSampleVersion(directory: string, sample: SampleVersion): void {
  mkdirSync(path.join(directory, 'web'), { recursive: true });
  mkdirSync(path.join(directory, 'images'), { recursive: true });
  writeFileSync(path.join(directory, 'docker-compose.yml'), composeFile(sample));
  writeFileSync(path.join(directory, 'web', 'index.html'), `${sample.page}\n`);
  writeFileSync(path.join(directory, '.env'), `APP_VERSION=${sample.version}\n`);
  for (const [name, body] of Object.entries(sample.files ?? {})) {
    mkdirSync(path.dirname(path.join(directory, name)), { recursive: true });
    writeFileSync(path.join(directory, name), body);
  }
  if (sample.traffic)
    writeFileSync(path.join(directory, 'traffic.sh'), trafficScript(sample.port, sample.traffic), { mode: 0o755 });
  if (sample.migrations) {
    mkdirSync(path.join(directory, 'migrations'), { recursive: true });
    for (const [name, body] of Object.entries(sample.migrations))
      writeFileSync(path.join(directory, 'migrations', name), body, { mode: 0o755 });
  }
  const archive = path.join(directory, 'images', `${sample.imageTag.replace(/[^a-zA-Z0-9_.-]+/g, '_')}.tar`);
  run('docker', ['save', '-o', archive, sample.imageTag]);
}

export function dockerReachable(): boolean {
  return spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 15_000 }).status === 0;
}

export function removeImages(tags: string[]): void {
  for (const tag of tags) spawnSync('docker', ['rmi', '-f', tag], { stdio: 'ignore' });
}
