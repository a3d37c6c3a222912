import { open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { errnoOf, temporaryPathFor, writeFileAtomic } from '../fsutil/index.js';
import { type Config, configSchema, defaultBaseUrl, isNuwaxCliConfigWithoutServer } from './schema.js';

export interface LoadedConfig {
  config: Config;
  /** The file it came from, or undefined when there is none and defaults apply. */
  file: string | undefined;
}

/** SPEC 1: --home, else $NUWAX_HOME, else the current directory. */
export function resolveHome(home?: string): string {
  return path.resolve(home ?? process.env.NUWAX_HOME ?? process.cwd());
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  const key = issue.path.map(String).join('.') || '(root)';
  let value: unknown = raw;
  for (const part of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[part as string];
  const shown = value === undefined ? 'missing' : JSON.stringify(value);
  return `${key} = ${shown}: ${issue.message}`;
}

/** nuwax-cli's own sections that nuwax does not read; its files still load (SPEC 2). */
const NUWAX_CLI_SECTIONS = ['updates'];

/**
 * Every section is loose (unknown keys inside a section load), but a section nobody knows is a typo
 * whose settings would silently not apply: `[sever]` leaves the server unconfigured.
 */
function checkSections(raw: Record<string, unknown>, source: string): void {
  const known = [...Object.keys(configSchema.shape), ...NUWAX_CLI_SECTIONS];
  const unknown = Object.keys(raw).filter((key) => !known.includes(key));
  if (unknown.length === 0) return;
  const named = unknown.map((key) => `[${key}]`).join(', ');
  throw new NuwaxError(
    ErrorCodes.E_CONFIG,
    `${source}: unknown section ${named}; the sections are ${known.map((key) => `[${key}]`).join(', ')}`,
    { details: { unknown, known } },
  );
}

export function parseConfig(text: string, source = 'config.toml'): Config {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (error) {
    const where = error instanceof TomlError ? ` (line ${error.line}, column ${error.column})` : '';
    throw new NuwaxError(
      ErrorCodes.E_CONFIG,
      `${source} is not valid TOML${where}: ${(error as Error).message.split('\n')[0]}`,
      {
        cause: error,
      },
    );
  }
  checkSections(raw as Record<string, unknown>, source);
  if (isNuwaxCliConfigWithoutServer(raw)) (raw as Record<string, unknown>).server = { base_url: defaultBaseUrl() };
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => describeIssue(issue, raw));
    throw new NuwaxError(ErrorCodes.E_CONFIG, `${source}: ${lines.join('; ')}`, { details: { issues: lines } });
  }
  return result.data;
}

/** Where the release comes from, as `check` and `doctor` name it. */
export interface ServerChoice {
  mode: 'manifest_url' | 'base_url';
  /** True when it is nuwax-cli's default server (a nuwax-cli config.toml without `[server]`). */
  isDefault: boolean;
}

const sameUrl = (a: string, b: string) => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

export function serverChoice(config: Config): ServerChoice | null {
  if (config.server.manifest_url) return { mode: 'manifest_url', isDefault: false };
  if (config.server.base_url) return { mode: 'base_url', isDefault: sameUrl(config.server.base_url, defaultBaseUrl()) };
  return null;
}

export async function loadConfig(home: string, configFile?: string): Promise<LoadedConfig> {
  const file = configFile ? path.resolve(configFile) : path.join(home, 'config.toml');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !configFile)
      return { config: parseConfig(''), file: undefined };
    throw new NuwaxError(ErrorCodes.E_CONFIG, `Cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  return { config: parseConfig(text, file), file };
}

/**
 * SPEC 8: commit the new version into config.toml. A targeted text edit of `[versions] docker_service`
 * keeps the user's comments and key order intact, which a parse-and-serialise round trip would not.
 */
export function setVersionInToml(text: string, version: string): string {
  const lines = text.split('\n');
  const assignment = `docker_service = "${version}"`;
  let section = '';
  let sectionStart = -1;
  for (let index = 0; index < lines.length; index += 1) {
    const trimmed = lines[index]!.trim();
    const header = /^\[([^\]]+)\]/.exec(trimmed);
    if (header && !trimmed.startsWith('[[')) {
      section = header[1]!.trim();
      if (section === 'versions') sectionStart = index;
      continue;
    }
    const value =
      section === 'versions' ? /^(\s*docker_service\s*=\s*)("[^"]*"|'[^']*'|[^\s#]*)(.*)$/.exec(lines[index]!) : null;
    if (value) {
      // Only the value changes: indentation, trailing comments and the rest of the file stay as the user wrote them.
      lines[index] = `${value[1]}"${version}"${value[3]}`;
      return lines.join('\n');
    }
  }
  if (sectionStart >= 0) {
    lines.splice(sectionStart + 1, 0, assignment);
    return lines.join('\n');
  }
  const prefix = text.length === 0 || text.endsWith('\n') ? text : `${text}\n`;
  return `${prefix}${prefix.length > 0 ? '\n' : ''}[versions]\n${assignment}\n`;
}

export async function commitVersionToConfig(file: string, version: string): Promise<void> {
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const updated = setVersionInToml(text, version);
  parseConfig(updated, file);
  await writeFileAtomic(file, updated);
}

/**
 * Refuses early what commitVersionToConfig would fail on after the switch: the commit writes a
 * temp file beside config.toml and renames it over, so both the folder and the file must be writable
 * (an immutable file or a read-only mount fails here, not after the new version runs).
 */
export async function assertConfigWritable(file: string): Promise<void> {
  const refuse = (error: unknown, what: string) =>
    new NuwaxError(
      ErrorCodes.E_CONFIG_READONLY,
      `${what} is not writable (${errnoOf(error) ?? String(error)}), so the upgrade could not record ` +
        'the new version: nothing was changed. Make it writable (chattr -i, a read-write mount) and retry.',
      { cause: error, details: { file } },
    );
  try {
    const handle = await open(file, 'r+');
    await handle.close();
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') throw refuse(error, file);
  }
  const temporary = temporaryPathFor(file);
  try {
    const handle = await open(temporary, 'wx', 0o600);
    await handle.close();
  } catch (error) {
    throw refuse(error, `The folder of ${file}`);
  }
  await rm(temporary, { force: true });
}
