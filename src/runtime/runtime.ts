import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ProgressListener } from '../events/index.js';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { exists, whenAbsent } from '../fsutil/index.js';
import { type Logger, silentLogger } from '../log/index.js';
import { type CommandOutput, detectCompose, runCommand } from './exec.js';
import { checkHealth, type HealthOptions, type HealthReport, inspectProject, lastLogLines } from './health.js';
import { checkImages, type HostArch, loadImages } from './images.js';

export interface RuntimeOptions {
  dockerDir: string;
  /** Absolute path of the deployment's compose file. */
  composeFile: string;
  /** The `-p` of nuwax-cli, from config.toml; wins over everything else. */
  projectName?: string;
  logger?: Logger;
  commandTimeoutMs?: number;
  /** Seconds `stop`/`down` give a container between SIGTERM and SIGKILL (`[docker] stop_timeout`, default 10). */
  stopTimeoutSeconds?: number;
  env?: NodeJS.ProcessEnv;
}

interface ComposeCall {
  composeFile?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

const CONFIG_TIMEOUT_MS = 60_000;

/** compose's own normalisation of a project name: lowercase, only [a-z0-9_-]. */
export function normaliseProjectName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_-]/g, '');
}

/** A top-level block of compose's normalised YAML (v1 writes each top-level key at column 0). */
function topLevelBlock(yaml: string, key: string): string {
  const lines = yaml.split('\n');
  const start = lines.findIndex((line) => line === `${key}:` || line.startsWith(`${key}: `));
  if (start < 0) return '';
  const end = lines.findIndex((line, index) => index > start && /^\S/.test(line));
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

function serviceLines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}

/** The last lines of a compose error, where compose says what is wrong. */
function tail(text: string, lines = 5): string {
  return text.trim().split('\n').slice(-lines).join(' | ');
}

export interface ServiceEvidence {
  service: string;
  container: string;
  status: string;
  exitCode: number;
  oomKilled: boolean;
  restartCount: number;
  health: string | null;
  /** The HEALTHCHECK command, as a line; null without one. */
  healthcheck: string | null;
  healthLog: Array<{ exitCode: number; output: string; end: string | null }>;
  logs: string[];
}

export interface ContainerEvidence {
  project: string;
  /** The compose command this box has (`docker compose` or `docker-compose`). */
  compose: string;
  services: ServiceEvidence[];
}

/** The Docker side of an upgrade: compose, images, health (SPEC 5, 8). */
export class DockerRuntime {
  private readonly logger: Logger;
  /**
   * compose's `config` answers by their arguments and the text of the compose file and its `.env`:
   * asked again only when those change. compose v1 is a second of python per call, and the health
   * check after the switch needs the services' list while the services are down.
   */
  private readonly configAnswers = new Map<string, Promise<string>>();

  constructor(private readonly options: RuntimeOptions) {
    this.logger = options.logger ?? silentLogger;
  }

  /**
   * As nuwax-cli derives it, so nuwax manages the containers the old client started: -p / config,
   * then the compose file's top-level `name:`, then the folder name.
   */
  async projectName(composeFile = this.options.composeFile): Promise<string> {
    if (this.options.projectName) return normaliseProjectName(this.options.projectName);
    const text = await readFile(composeFile, 'utf8').catch(whenAbsent(''));
    const named = /^name:[ \t]*["']?([^"'\s#]+)/m.exec(text)?.[1];
    return normaliseProjectName(named ?? path.basename(path.resolve(this.options.dockerDir)));
  }

  private async compose(args: string[], call: ComposeCall = {}): Promise<CommandOutput> {
    const env = this.options.env ?? process.env;
    const compose = await detectCompose(call.signal, env);
    const file = call.composeFile ?? this.options.composeFile;
    // A staged compose file (checked before the switch, SPEC 8) resolves `./` paths and `.env` in its
    // own folder: docker/ may not even exist yet on a first install.
    const projectDir = call.composeFile ? path.dirname(path.resolve(call.composeFile)) : this.options.dockerDir;
    const fullArgs = [
      ...compose.args,
      '-f',
      file,
      '-p',
      await this.projectName(),
      '--project-directory',
      projectDir,
      ...args,
    ];
    this.logger.debug({ command: compose.command, args: fullArgs }, 'compose');
    const timeoutMs = call.timeoutMs ?? this.options.commandTimeoutMs ?? 600_000;
    return runCommand(compose.command, fullArgs, {
      cwd: projectDir,
      timeoutMs,
      env,
      signal: call.signal,
    });
  }

  /** `config` variants fail with E_COMPOSE_INVALID and compose's own words; remembered by content. */
  private async config(args: string[], composeFile?: string, signal?: AbortSignal): Promise<string> {
    const key = await this.configKey(args, composeFile);
    const remembered = this.configAnswers.get(key);
    if (remembered) return remembered;
    const answer = this.askConfig(args, composeFile, signal);
    this.configAnswers.set(key, answer);
    // A failure (or an abort) is not remembered: the next call asks compose again.
    answer.catch(() => this.configAnswers.delete(key));
    return answer;
  }

  /**
   * The list of services does not depend on where the file lies, so the list read from the staged
   * file before the stop answers for the same text once it is docker/'s own.
   */
  private async configKey(args: string[], composeFile?: string): Promise<string> {
    const file = composeFile ?? this.options.composeFile;
    const projectDir = composeFile ? path.dirname(path.resolve(composeFile)) : this.options.dockerDir;
    const [text, env] = await Promise.all([
      readFile(file, 'utf8').catch(whenAbsent(null)),
      readFile(path.join(projectDir, '.env'), 'utf8').catch(whenAbsent(null)),
    ]);
    const where = args.includes('--services') ? [] : [path.resolve(file), path.resolve(projectDir)];
    return createHash('sha256')
      .update(JSON.stringify([args, where, text, env]))
      .digest('hex');
  }

  private async askConfig(args: string[], composeFile?: string, signal?: AbortSignal): Promise<string> {
    const output = await this.compose(['config', ...args], {
      timeoutMs: CONFIG_TIMEOUT_MS,
      composeFile: composeFile || undefined,
      signal,
    });
    if (output.code !== 0) {
      const file = composeFile ?? this.options.composeFile;
      throw new NuwaxError(
        ErrorCodes.E_COMPOSE_INVALID,
        `${file} is not a valid compose file: ${tail(output.stderr)}`,
        { details: { file, stderr: output.stderr } },
      );
    }
    return output.stdout;
  }

  /** `config -q` on the new compose file while the old version still runs (SPEC 8: nothing stops for a bad file). */
  async validate(composeFile?: string, signal?: AbortSignal): Promise<void> {
    // The full output validates as `-q` does, and the image check and the switch's mode read it next.
    await this.normalisedConfig(composeFile, signal);
  }

  /** compose's normalised configuration (`.env` read, variables resolved): JSON from v2, YAML from v1. */
  async normalisedConfig(
    composeFile?: string,
    signal?: AbortSignal,
  ): Promise<{ format: 'json' | 'yaml'; text: string }> {
    const compose = await detectCompose(signal, this.options.env ?? process.env);
    if (compose.version === 'v2')
      return { format: 'json', text: await this.config(['--format', 'json'], composeFile, signal) };
    return { format: 'yaml', text: await this.config([], composeFile, signal) };
  }

  /** In compose's order; read before the stop, the health check after the switch needs no compose call. */
  async services(composeFile?: string, signal?: AbortSignal): Promise<string[]> {
    return serviceLines(await this.config(['--services'], composeFile, signal));
  }

  /** The images the compose file names, from compose's normalised output (no YAML parser needed). */
  async composeImages(composeFile?: string): Promise<string[]> {
    const compose = await detectCompose(undefined, this.options.env ?? process.env);
    if (compose.version === 'v2') {
      const parsed = JSON.parse(await this.config(['--format', 'json'], composeFile)) as {
        services?: Record<string, { image?: string }>;
      };
      return [
        ...new Set(Object.values(parsed.services ?? {}).flatMap((service) => (service.image ? [service.image] : []))),
      ];
    }
    const text = await this.config([], composeFile);
    return [...new Set([...text.matchAll(/^\s+image:\s*["']?([^"'\s]+)/gm)].map((match) => match[1]!))];
  }

  /** A compose verb whose failure is E_COMPOSE with compose's own last words. */
  private async composeOrThrow(args: string[], call: ComposeCall): Promise<CommandOutput> {
    const output = await this.compose(args, call);
    if (output.code !== 0)
      throw new NuwaxError(ErrorCodes.E_COMPOSE, `compose ${args[0]} failed: ${tail(output.stderr)}`, {
        details: { stdout: output.stdout, stderr: output.stderr },
      });
    return output;
  }

  /**
   * Stops and removes the project's containers and networks (repair, rollback, and a switch that
   * changes the project or its networks); a first install has nothing to stop (null).
   */
  async down(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<CommandOutput | null> {
    if (!(await exists(this.options.composeFile))) return null;
    const timeout = String(this.options.stopTimeoutSeconds ?? 10);
    return this.composeOrThrow(['down', '--remove-orphans', '-t', timeout], options);
  }

  /**
   * Stops the project's containers and keeps them (same form in v1 and v2): the next `up -d` starts
   * the unchanged ones as they were and recreates only those whose config or image changed.
   */
  async stop(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<CommandOutput | null> {
    if (!(await exists(this.options.composeFile))) return null;
    return this.composeOrThrow(['stop', '-t', String(this.options.stopTimeoutSeconds ?? 10)], options);
  }

  /** `--remove-orphans`: the container of a service the release removed goes, stopped or running. */
  async up(options: { signal?: AbortSignal; timeoutMs?: number; composeFile?: string } = {}): Promise<CommandOutput> {
    return this.composeOrThrow(['up', '-d', '--remove-orphans'], options);
  }

  /**
   * Why switching to `composeFile` needs `down` rather than `stop`, or null: another project name
   * would leave the old containers behind, and compose refuses to change an existing network.
   */
  async switchNeedsDown(composeFile: string, signal?: AbortSignal): Promise<string | null> {
    if (!(await exists(this.options.composeFile))) return null;
    const [current, next] = await Promise.all([this.projectName(), this.projectName(composeFile)]);
    if (current !== next) return `the project name changes from ${current} to ${next}`;
    const [before, after] = await Promise.all([
      this.networksOf(undefined, signal),
      this.networksOf(composeFile, signal),
    ]);
    return before === after ? null : 'the networks change';
  }

  /** The top-level `networks` of compose's normalised configuration, as comparable text. */
  private async networksOf(composeFile: string | undefined, signal?: AbortSignal): Promise<string> {
    const compose = await detectCompose(signal, this.options.env ?? process.env);
    if (compose.version === 'v2') {
      const parsed = JSON.parse(await this.config(['--format', 'json'], composeFile, signal)) as {
        networks?: unknown;
      };
      return JSON.stringify(parsed.networks ?? null);
    }
    return topLevelBlock(await this.config([], composeFile, signal), 'networks');
  }

  loadImages(
    imagesDir: string,
    arch: HostArch,
    options: { signal?: AbortSignal; onProgress?: ProgressListener } = {},
  ): Promise<{ loaded: string[]; skipped: string[] }> {
    return loadImages(imagesDir, arch, {
      ...options,
      timeoutMs: this.options.commandTimeoutMs || undefined,
    });
  }

  async checkImages(arch: HostArch, composeFile?: string): Promise<void> {
    await checkImages(await this.composeImages(composeFile), arch);
  }

  async health(options: HealthOptions): Promise<HealthReport> {
    // Unless remembered, compose v1 takes about a second to list the services: the first poll runs meanwhile.
    return checkHealth(
      await this.projectName(),
      {
        services: this.services(undefined, options.signal),
        fresh: () => this.askConfig(['--services'], undefined, options.signal).then(serviceLines),
      },
      options,
    );
  }

  /**
   * What each container of the project looked like at the failure, read before anything stops it:
   * its state, the HEALTHCHECK and its log, the last lines of its output.
   */
  async evidence(lines = 200): Promise<ContainerEvidence> {
    const project = await this.projectName();
    const compose = await detectCompose(undefined, this.options.env).then(
      (found) => [found.command, ...found.args].join(' '),
      () => 'docker compose',
    );
    const services: ServiceEvidence[] = [];
    for (const container of await inspectProject(project)) {
      const test = container.Config.Healthcheck?.Test ?? null;
      services.push({
        service: container.Config.Labels?.['com.docker.compose.service'] ?? container.Id.slice(0, 12),
        container: container.Id,
        status: container.State.Status,
        exitCode: container.State.ExitCode,
        oomKilled: container.State.OOMKilled,
        restartCount: container.RestartCount,
        health: container.State.Health?.Status ?? null,
        healthcheck: test && test[0] !== 'NONE' ? test.slice(1).join(' ') : null,
        healthLog: (container.State.Health?.Log ?? []).map((entry) => ({
          exitCode: entry.ExitCode,
          output: entry.Output,
          end: entry.End ?? null,
        })),
        logs: await lastLogLines(container.Id, lines),
      });
    }
    return { project, compose, services };
  }

  /** For failure bundles: compose config, the containers' inspect output and their last log lines. */
  async collectDiagnostics(service?: string): Promise<Record<string, unknown>> {
    const project = await this.projectName();
    const config = await this.compose(['config'], { timeoutMs: CONFIG_TIMEOUT_MS }).catch((error: Error) => ({
      code: null,
      stdout: '',
      stderr: error.message,
    }));
    const containers = (
      await inspectProject(project).catch((error: unknown) => {
        this.logger.warn({ err: error }, 'cannot inspect the containers for the diagnosis');
        return [];
      })
    ).filter((item) => service === undefined || item.Config.Labels?.['com.docker.compose.service'] === service);
    const logs: Record<string, string[]> = {};
    for (const container of containers) {
      const name = container.Config.Labels?.['com.docker.compose.service'] ?? container.Id.slice(0, 12);
      logs[name] = await lastLogLines(container.Id, 50);
    }
    return { project, compose_config: config.stdout || config.stderr, containers, logs };
  }
}
