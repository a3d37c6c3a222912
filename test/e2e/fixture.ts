import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  importBusyboxImage,
  removeImages,
  type SampleVersion,
  writeSampleVersion,
} from '../../scripts/lib/sample-app.js';
import { runCli } from '../helpers/cli.js';
import { ReleaseServer } from '../helpers/release-server.js';

/** Releases of the sample app built with `nuwax release`, served from memory on 127.0.0.1. */
export interface Releases {
  server: ReleaseServer;
  work: string;
  tags: string[];
  publish(name: string, options: { version: string; packages: string[]; notes?: string }): Promise<void>;
  versionDir(version: string): string;
}

export const uniqueId = () => `${process.pid}${Math.floor(Math.random() * 1e6)}`;

export async function buildRelease(work: string, sample: SampleVersion): Promise<string> {
  const dir = path.join(work, 'versions', sample.version);
  rmSync(dir, { recursive: true, force: true });
  writeSampleVersion(dir, sample);
  return dir;
}

export async function cli(args: string[]): Promise<ReturnType<typeof runCli> extends Promise<infer R> ? R : never> {
  const run = await runCli(args, { timeoutMs: 240_000 });
  if (run.code !== 0) throw new Error(`nuwax ${args.join(' ')} exited ${run.code}: ${run.stderr}${run.stdout}`);
  return run;
}

export async function startReleases(work: string): Promise<Releases> {
  const server = await new ReleaseServer().start();
  const tags: string[] = [];
  return {
    server,
    work,
    tags,
    versionDir: (version) => path.join(work, 'versions', version),
    async publish(name, options) {
      const out = path.join(work, 'out', name);
      mkdirSync(out, { recursive: true });
      await cli([
        'release',
        'manifest',
        '--version',
        options.version,
        '--notes',
        options.notes ?? `release ${options.version}`,
        '-o',
        path.join(out, 'manifest.json'),
        ...options.packages,
      ]);
      for (const file of options.packages) server.set(`/${name}/${path.basename(file)}`, readFileSync(file));
      server.set(`/${name}/manifest.json`, readFileSync(path.join(out, 'manifest.json')));
    },
  };
}

export function makeImage(tag: string, tags: string[]): void {
  importBusyboxImage(tag);
  tags.push(tag);
}

export function cleanup(releases: Releases | undefined, projects: string[]): void {
  for (const project of projects) {
    const ids = spawnSync('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], {
      encoding: 'utf8',
    })
      .stdout.split('\n')
      .filter(Boolean);
    if (ids.length) spawnSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
  }
  if (releases) removeImages(releases.tags);
}

/** A home whose config points at a release channel, with a unique compose project name. */
export function writeHome(
  home: string,
  options: { url: string; project: string; version?: string; extra?: string },
): void {
  mkdirSync(home, { recursive: true });
  const versions = options.version ? `[versions]\ndocker_service = "${options.version}"\n\n` : '';
  writeFileSync(
    path.join(home, 'config.toml'),
    `${versions}[server]\nmanifest_url = "${options.url}"\ntimeout = 10\n\n[docker]\nproject_name = "${options.project}"\nstop_timeout = 2\n\n[health]\ntimeout = 40\nsettle = 3\ncritical = ["web", "init"]\n\n[upgrade]\nphase_timeout = "3m"\n${options.extra ?? ''}`,
  );
}

export function copyTree(from: string, to: string): void {
  cpSync(from, to, { recursive: true, verbatimSymlinks: true });
}
