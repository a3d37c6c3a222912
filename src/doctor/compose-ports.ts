/**
 * The host ports a compose file publishes, read from compose's own normalised output (`.env` read,
 * variables resolved): JSON from compose v2, YAML from v1. v1's YAML is block style with either short
 * (`127.0.0.1:8081:81/udp`) or long entries (`published:`/`target:`), so a reader for that subset of
 * YAML does, without a YAML dependency. The raw file (when compose is missing) goes the same way.
 */
export interface PublishedPort {
  service: string;
  hostIp: string | null;
  port: number;
  protocol: string;
}

export interface ComposePorts {
  ports: PublishedPort[];
  /** Services on `network_mode: host`: compose ignores their `ports:`, and what they bind is unknown. */
  hostNetwork: string[];
  unreadable: string[];
}

/** A range `9000-9100` is expanded; beyond this many ports an entry is reported unreadable. */
const MAX_RANGE = 1024;

interface LongPort {
  published?: unknown;
  host_ip?: unknown;
  protocol?: unknown;
}

type Entry = { service: string } & ({ short: string } | { long: LongPort });

function portRange(text: string): number[] | null {
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text.trim());
  if (!match) return null;
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (first < 1 || last > 65_535 || last < first || last - first >= MAX_RANGE) return null;
  return Array.from({ length: last - first + 1 }, (_, index) => first + index);
}

/** Short syntax: `[HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTOCOL]`; IPv6 host IPs in brackets. */
export function parseShortPort(spec: string): { hostIp: string | null; ports: number[]; protocol: string } | null {
  let rest = spec.trim();
  let protocol = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    protocol = rest.slice(slash + 1).toLowerCase();
    rest = rest.slice(0, slash);
  }
  let hostIp: string | null = null;
  const bracketed = /^\[([0-9a-fA-F:.]+)\]:(.*)$/.exec(rest);
  if (bracketed) {
    hostIp = bracketed[1]!;
    rest = bracketed[2]!;
  }
  const parts = rest.split(':');
  if (!bracketed && parts.length === 3) hostIp = parts.shift()!;
  if (parts.length === 1) return portRange(parts[0]!) ? { hostIp, ports: [], protocol } : null;
  if (parts.length !== 2) return null;
  if (parts[0] === '') return portRange(parts[1]!) ? { hostIp, ports: [], protocol } : null;
  const ports = portRange(parts[0]!);
  if (!ports || !portRange(parts[1]!)) return null;
  return { hostIp: hostIp === '' ? null : hostIp, ports, protocol };
}

function parseLongPort(entry: LongPort): { hostIp: string | null; ports: number[]; protocol: string } | null {
  const protocol = typeof entry.protocol === 'string' && entry.protocol !== '' ? entry.protocol.toLowerCase() : 'tcp';
  const hostIp = typeof entry.host_ip === 'string' && entry.host_ip !== '' ? entry.host_ip : null;
  if (entry.published === undefined || entry.published === null || entry.published === '')
    return { hostIp, ports: [], protocol };
  const ports = portRange(String(entry.published));
  return ports ? { hostIp, ports, protocol } : null;
}

function collect(entries: Entry[], hostNetwork: string[]): ComposePorts {
  const seen = new Set<string>();
  const result: ComposePorts = { ports: [], hostNetwork, unreadable: [] };
  for (const entry of entries) {
    if (hostNetwork.includes(entry.service)) continue;
    const parsed = 'short' in entry ? parseShortPort(entry.short) : parseLongPort(entry.long);
    if (!parsed) {
      result.unreadable.push(`${entry.service}: ${'short' in entry ? entry.short : JSON.stringify(entry.long)}`);
      continue;
    }
    // 0.0.0.0 is what an empty host IP means; `::` too, on a dual-stack box.
    const hostIp = parsed.hostIp === '0.0.0.0' || parsed.hostIp === '::' ? null : parsed.hostIp;
    for (const port of parsed.ports) {
      const key = `${hostIp ?? ''}|${port}|${parsed.protocol}`;
      if (seen.has(key)) continue;
      seen.add(key);
      result.ports.push({ service: entry.service, hostIp, port, protocol: parsed.protocol });
    }
  }
  return result;
}

/** compose v2 `config --format json`. */
export function portsFromComposeJson(text: string): ComposePorts {
  const parsed = JSON.parse(text) as {
    services?: Record<string, { network_mode?: string; ports?: Array<string | LongPort> }>;
  };
  const entries: Entry[] = [];
  const hostNetwork: string[] = [];
  for (const [service, definition] of Object.entries(parsed.services ?? {})) {
    if (definition.network_mode === 'host') hostNetwork.push(service);
    for (const port of definition.ports ?? [])
      entries.push(typeof port === 'string' ? { service, short: port } : { service, long: port });
  }
  return collect(entries, hostNetwork.sort());
}

interface YamlLine {
  indent: number;
  text: string;
}

/** Drops comments (a `#` at the start or after a space, outside quotes), blank lines and document markers. */
function yamlLines(text: string): YamlLine[] {
  const lines: YamlLine[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let quote: string | null = null;
    let end = raw.length;
    for (let index = 0; index < raw.length; index += 1) {
      const char = raw[index]!;
      if (quote) {
        if (char === quote) quote = null;
      } else if (char === '"' || char === "'") {
        quote = char;
      } else if (char === '#' && (index === 0 || /\s/.test(raw[index - 1]!))) {
        end = index;
        break;
      }
    }
    const content = raw.slice(0, end).trimEnd();
    if (content.trim() === '' || content === '---' || content === '...') continue;
    lines.push({ indent: content.length - content.trimStart().length, text: content.trim() });
  }
  return lines;
}

function unquote(value: string): string {
  const trimmed = value.trim();
  if (trimmed.length >= 2 && (trimmed[0] === '"' || trimmed[0] === "'") && trimmed.at(-1) === trimmed[0])
    return trimmed.slice(1, -1);
  return trimmed;
}

/** `key: value` (a colon followed by a space or the end), else null: `8080:80` is a scalar. */
function keyValue(text: string): { key: string; value: string } | null {
  const match = /^("[^"]*"|'[^']*'|[^\s"'][^:]*?)\s*:(?:\s+(.*))?$/.exec(text);
  return match ? { key: unquote(match[1]!), value: match[2] ?? '' } : null;
}

/** Splits a flow collection's inside on top-level commas. */
function splitFlow(inside: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let current = '';
  for (const char of inside) {
    if (quote) {
      if (char === quote) quote = null;
    } else if (char === '"' || char === "'") quote = char;
    else if (char === '{' || char === '[') depth += 1;
    else if (char === '}' || char === ']') depth -= 1;
    else if (char === ',' && depth === 0) {
      items.push(current.trim());
      current = '';
      continue;
    }
    current += char;
  }
  if (current.trim() !== '') items.push(current.trim());
  return items;
}

function flowMap(text: string): LongPort {
  const map: Record<string, string> = {};
  for (const item of splitFlow(text.trim().slice(1, -1))) {
    const pair = keyValue(item);
    if (pair) map[pair.key] = unquote(pair.value);
  }
  return map;
}

function itemEntry(service: string, text: string): Entry {
  return text.startsWith('{') ? { service, long: flowMap(text) } : { service, short: unquote(text) };
}

/** The entries of a `ports:` block sequence starting at `start`; returns them and the next line's index. */
function blockPorts(
  service: string,
  lines: YamlLine[],
  start: number,
  keyIndent: number,
): { entries: Entry[]; next: number } {
  const entries: Entry[] = [];
  let index = start;
  while (index < lines.length) {
    const item = lines[index]!;
    if (item.indent < keyIndent || (item.indent === keyIndent && !item.text.startsWith('-'))) break;
    if (!item.text.startsWith('-')) {
      index += 1;
      continue;
    }
    const first = item.text.slice(1).trim();
    index += 1;
    const pair = first.startsWith('{') ? null : keyValue(first);
    if (!pair) {
      entries.push(itemEntry(service, first));
      continue;
    }
    // A long-syntax map: its first key is on the `-` line, the others below it, indented further.
    const map: Record<string, string> = { [pair.key]: unquote(pair.value) };
    while (index < lines.length && lines[index]!.indent > item.indent && !lines[index]!.text.startsWith('-')) {
      const more = keyValue(lines[index]!.text);
      if (more) map[more.key] = unquote(more.value);
      index += 1;
    }
    entries.push({ service, long: map });
  }
  return { entries, next: index };
}

function servicePorts(service: string, body: YamlLine[]): { entries: Entry[]; host: boolean } {
  const entries: Entry[] = [];
  let host = false;
  const keyIndent = body[0]?.indent ?? 0;
  let index = 0;
  while (index < body.length) {
    const current = body[index]!;
    const pair = current.indent === keyIndent && !current.text.startsWith('-') ? keyValue(current.text) : null;
    index += 1;
    if (!pair) continue;
    if (pair.key === 'network_mode' && unquote(pair.value) === 'host') host = true;
    if (pair.key !== 'ports') continue;
    if (pair.value.startsWith('[')) {
      let flow = pair.value;
      // A flow sequence may run over several lines: join them until its brackets close.
      while (!flow.trimEnd().endsWith(']') && index < body.length) flow += ` ${body[index++]!.text}`;
      entries.push(...splitFlow(flow.trim().slice(1, -1)).map((item) => itemEntry(service, item)));
    } else {
      const block = blockPorts(service, body, index, keyIndent);
      entries.push(...block.entries);
      index = block.next;
    }
  }
  return { entries, host };
}

/** compose v1 `config` output, or a compose file as written. */
export function portsFromComposeYaml(text: string): ComposePorts {
  const lines = yamlLines(text);
  const start = lines.findIndex((item) => item.indent === 0 && keyValue(item.text)?.key === 'services');
  const entries: Entry[] = [];
  const hostNetwork: string[] = [];
  if (start < 0) return collect(entries, hostNetwork);
  let index = start + 1;
  const serviceIndent = lines[index]?.indent ?? 0;
  while (index < lines.length && lines[index]!.indent > 0) {
    const header = lines[index]!;
    const name = header.indent === serviceIndent ? keyValue(header.text)?.key : undefined;
    let end = index + 1;
    while (end < lines.length && lines[end]!.indent > serviceIndent) end += 1;
    if (name !== undefined) {
      const found = servicePorts(name, lines.slice(index + 1, end));
      entries.push(...found.entries);
      if (found.host) hostNetwork.push(name);
    }
    index = end;
  }
  return collect(entries, hostNetwork.sort());
}

/**
 * `port/protocol` of every host port in `docker ps --format '{{.Ports}}'` output, e.g.
 * `0.0.0.0:8080->80/tcp, :::8080->80/tcp, 127.0.0.1:9000-9002->9000-9002/udp`.
 */
export function portsInDockerPs(output: string): string[] {
  const held = new Set<string>();
  for (const match of output.matchAll(/:(\d{1,5})(?:-(\d{1,5}))?->\d{1,5}(?:-\d{1,5})?\/(\w+)/g)) {
    const range = portRange(match[2] ? `${match[1]}-${match[2]}` : match[1]!) ?? [];
    for (const port of range) held.add(`${port}/${match[3]}`);
  }
  return [...held].sort();
}
