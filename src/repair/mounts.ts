import type { Ownership } from './types.js';

/**
 * The bind mounts and `user:` of each service, read from compose's normalised output: JSON from
 * compose v2, block YAML from v1 (relative sources already made absolute). Like the doctor's port
 * reader, a reader for that subset of YAML does, without a YAML dependency.
 */
export interface ServiceMounts {
  service: string;
  user: string | null;
  sources: string[];
}

/** `uid[:gid]` when numeric; a user name would need the container's /etc/passwd, so it is left alone. */
export function parseUser(user: string | null): Ownership | null {
  const match = user === null ? null : /^(\d+)(?::(\d+))?$/.exec(user.trim());
  if (!match) return null;
  const uid = Number(match[1]);
  return { uid, gid: match[2] === undefined ? uid : Number(match[2]) };
}

/** The source of a short volume entry when it is a host path (a named volume has no slash). */
function shortSource(entry: string): string | null {
  const source = entry.split(':')[0] ?? '';
  return source.startsWith('/') ? source : null;
}

interface LongVolume {
  type?: unknown;
  source?: unknown;
}

function longSource(entry: LongVolume): string | null {
  return entry.type === 'bind' && typeof entry.source === 'string' && entry.source.startsWith('/')
    ? entry.source
    : null;
}

export function mountsFromComposeJson(text: string): ServiceMounts[] {
  const parsed = JSON.parse(text) as {
    services?: Record<string, { user?: unknown; volumes?: Array<string | LongVolume> }>;
  };
  return Object.entries(parsed.services ?? {}).map(([service, definition]) => ({
    service,
    user: typeof definition.user === 'string' ? definition.user : null,
    sources: (definition.volumes ?? []).flatMap((entry) => {
      const source = typeof entry === 'string' ? shortSource(entry) : longSource(entry);
      return source ? [source] : [];
    }),
  }));
}

function unquote(value: string): string {
  const trimmed = value.trim();
  if (trimmed.length >= 2 && (trimmed[0] === '"' || trimmed[0] === "'") && trimmed.at(-1) === trimmed[0])
    return trimmed.slice(1, -1);
  return trimmed;
}

interface Line {
  indent: number;
  text: string;
}

function lines(text: string): Line[] {
  return text
    .split(/\r?\n/)
    .filter((raw) => raw.trim() !== '' && !raw.trim().startsWith('#'))
    .map((raw) => ({ indent: raw.length - raw.trimStart().length, text: raw.trim() }));
}

/** The entries of a block sequence under a key at `keyIndent`: strings, or maps of `key: value`. */
function sequence(body: Line[], start: number, keyIndent: number): Array<string | Record<string, string>> {
  const items: Array<string | Record<string, string>> = [];
  let index = start;
  while (index < body.length && (body[index]!.indent > keyIndent || body[index]!.text.startsWith('-'))) {
    const line = body[index]!;
    if (line.indent < keyIndent) break;
    index += 1;
    if (!line.text.startsWith('-')) continue;
    const first = line.text.slice(1).trim();
    const pair = /^([A-Za-z_]+):\s*(.*)$/.exec(first);
    if (!pair) {
      items.push(unquote(first));
      continue;
    }
    const map: Record<string, string> = { [pair[1]!]: unquote(pair[2]!) };
    while (index < body.length && body[index]!.indent > line.indent && !body[index]!.text.startsWith('-')) {
      const more = /^([A-Za-z_]+):\s*(.*)$/.exec(body[index]!.text);
      if (more) map[more[1]!] = unquote(more[2]!);
      index += 1;
    }
    items.push(map);
  }
  return items;
}

function serviceMounts(service: string, body: Line[]): ServiceMounts {
  const result: ServiceMounts = { service, user: null, sources: [] };
  const keyIndent = body[0]?.indent ?? 0;
  for (let index = 0; index < body.length; index += 1) {
    const line = body[index]!;
    if (line.indent !== keyIndent) continue;
    const pair = /^([A-Za-z_]+):\s*(.*)$/.exec(line.text);
    if (pair?.[1] === 'user') result.user = unquote(pair[2]!);
    if (pair?.[1] !== 'volumes') continue;
    for (const item of sequence(body, index + 1, keyIndent)) {
      const source = typeof item === 'string' ? shortSource(item) : longSource(item);
      if (source) result.sources.push(source);
    }
  }
  return result;
}

/** compose v1 `config` output. */
export function mountsFromComposeYaml(text: string): ServiceMounts[] {
  const all = lines(text);
  const start = all.findIndex((line) => line.indent === 0 && line.text === 'services:');
  if (start < 0) return [];
  const result: ServiceMounts[] = [];
  let index = start + 1;
  const serviceIndent = all[index]?.indent ?? 0;
  while (index < all.length && all[index]!.indent > 0) {
    const header = all[index]!;
    let end = index + 1;
    while (end < all.length && all[end]!.indent > serviceIndent) end += 1;
    const name = header.indent === serviceIndent ? /^([^:\s]+):\s*$/.exec(header.text)?.[1] : undefined;
    if (name) result.push(serviceMounts(unquote(name), all.slice(index + 1, end)));
    index = end;
  }
  return result;
}
