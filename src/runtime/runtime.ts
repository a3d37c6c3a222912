import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ProgressListener } from '../events/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { exists } from '../fsutil/index.js';
import { type Logger, silentLogger } from '../log/index.js';
import { type CommandOutput, detectCompose, runCommand } from './exec.js';
import { checkHealth, type HealthOptions, type HealthReport, lastLogLines } from './health.js';
import { checkImages, type HostArch, loadImages } from './images.js';

export interface RuntimeOptions {
  dockerDir: string;
  composeFile: string;
  projectName?: string;
  logger?: Logger;
  commandTimeoutMs?: number;
  /** Seconds compose waits for a container to stop before killing it. */
  stopTimeoutSeconds?: number;
}

/** compose's own normalisation of a project name. */
export function normaliseProjectName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_-]/g, '');
}

/** The Docker side of an upgrade: compose, images, health (SPEC 5, 8). */
export class DockerRuntime {
  private readonly logger: Logger;

  constructor(private readonly options: RuntimeOptions) {
    this.logger = options.logger ?? silentLogger;
  }

  /** As nuwax-cli derives it: -p / config, then the compose file's `name:`, then the folder. */
  async projectName(): Promise<string> {
    if (this.options.projectName) return normaliseProjectName(this.options.projectName);
    const text = await readFile(this.options.composeFile, 'utf8').catch(() => '');
    const named = /^name:\s*["']?([^"'\s#]+)/m.exec(text)?.[1];
    return normaliseProjectName(named ?? path.basename(this.options.dockerDir));
  }

  private async compose(args: string[], options: { composeFile?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<CommandOutput> {
    const compose = await detectCompose(options.signal);
    const file = options.composeFile ?? this.options.composeFile;
    // A staged compose file resolves its relative paths against its own folder; docker/ may not exist yet.
    const projectDir = path.dirname(file);
    const fullArgs = [...compose.args, '-f', file, '-p', await this.projectName(), '--project-directory', projectDir, ...args];
    this.logger.debug({ command: compose.command, args: fullArgs }, 'compose');
    return runCommand(compose.command, fullArgs, { cwd: projectDir, timeoutMs: options.timeoutMs ?? this.options.commandTimeoutMs ?? 600_000, ...(options.signal ? { signal: options.signal } : {}) });
  }

  /** `config -q` on the new compose file, before anything stops (issue 5). */
  async validate(composeFile?: string, signal?: AbortSignal): Promise<void> {
    const output = await this.compose(['config', '-q'], { ...(composeFile ? { composeFile } : {}), ...(signal ? { signal } : {}), timeoutMs: 60_000 });
    if (output.code !== 0) throw new NuwaxError(ErrorCodes.E_COMPOSE_INVALID, output.stderr.trim().split('\n').slice(-5).join(' '), { details: { stderr: output.stderr } });
  }

  async services(composeFile?: string): Promise<string[]> {
    const output = await this.compose(['config', '--services'], { ...(composeFile ? { composeFile } : {}), timeoutMs: 60_000 });
    if (output.code !== 0) throw new NuwaxError(ErrorCodes.E_COMPOSE_INVALID, output.stderr.trim());
    return output.stdout.split('\n').map((line) => line.trim()).filter(Boolean);
  }

  async composeImages(composeFile?: string): Promise<string[]> {
    const output = await this.compose(['config'], { ...(composeFile ? { composeFile } : {}), timeoutMs: 60_000 });
    if (output.code !== 0) throw new NuwaxError(ErrorCodes.E_COMPOSE_INVALID, output.stderr.trim());
    return [...new Set([...output.stdout.matchAll(/^\s+image:\s*["']?([^"'\s]+)/gm)].map((match) => match[1]!))];
  }

  async down(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<CommandOutput | null> {
    // A first install has nothing to stop.
    if (!(await exists(this.options.composeFile))) return null;
    const output = await this.compose(['down', '--remove-orphans', '-t', String(this.options.stopTimeoutSeconds ?? 10)], options);
    if (output.code !== 0) throw new NuwaxError(ErrorCodes.E_COMPOSE, `compose down failed: ${output.stderr.trim().slice(-800)}`, { details: { stderr: output.stderr } });
    return output;
  }

  async up(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<CommandOutput> {
    const output = await this.compose(['up', '-d', '--remove-orphans'], options);
    if (output.code !== 0) throw new NuwaxError(ErrorCodes.E_COMPOSE, `compose up failed: ${output.stderr.trim().split('\n').slice(-5).join(' ')}`, { details: { stderr: output.stderr } });
    return output;
  }

  loadImages(imagesDir: string, arch: HostArch, options: { signal?: AbortSignal; onProgress?: ProgressListener } = {}) {
    return loadImages(imagesDir, arch, options);
  }

  async checkImages(arch: HostArch, composeFile?: string): Promise<void> {
    await checkImages(await this.composeImages(composeFile), arch);
  }

  async health(options: HealthOptions): Promise<HealthReport> {
    return checkHealth(await this.projectName(), await this.services(), options);
  }

  /** For failure bundles: compose config, container states and their last log lines. */
  async collectDiagnostics(): Promise<Record<string, unknown>> {
    const project = await this.projectName();
    const config = await this.compose(['config'], { timeoutMs: 60_000 }).catch((error: Error) => ({ code: null, stdout: '', stderr: error.message }));
    const ids = (await runCommand('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], { timeoutMs: 30_000 })).stdout.split('\n').filter(Boolean);
    const inspect = ids.length ? await runCommand('docker', ['inspect', ...ids], { timeoutMs: 30_000 }) : null;
    const logs: Record<string, string[]> = {};
    for (const id of ids) logs[id.slice(0, 12)] = await lastLogLines(id, 50);
    return { project, compose_config: config.stdout || config.stderr, containers: inspect?.code === 0 ? JSON.parse(inspect.stdout) : [], logs };
  }
}
