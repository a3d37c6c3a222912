import { createReadStream, type Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ErrorCodes, NuwaxError } from '../errors/index.js';
import { whenAbsent } from '../fsutil/index.js';

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.sig': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.gz': 'application/gzip',
  '.tgz': 'application/gzip',
  '.zip': 'application/zip',
  '.tar': 'application/x-tar',
};

function etagOf(info: Stats): string {
  return `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}-${info.ino.toString(16)}"`;
}

/** One `bytes=` range (RFC 9110 14.1.2); null: ignore the header (malformed or several); 'unsatisfiable': 416. */
export function parseRange(header: string, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (match[2] !== '' && Number(match[2]) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** The request path as a file inside root: `..`, NUL, backslashes and symlinks leading out are refused. */
async function resolveRequest(root: string, url: string): Promise<string | 'refused' | 'missing'> {
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(url, 'http://localhost').pathname);
  } catch (error) {
    // A URL that does not parse (TypeError) or a malformed %-escape (URIError) names no file.
    if (error instanceof TypeError || error instanceof URIError) return 'refused';
    throw error;
  }
  if (pathname.includes('\0') || pathname.includes('\\')) return 'refused';
  const parts = pathname.split('/').filter((part) => part !== '');
  if (parts.some((part) => part === '..' || part === '.')) return 'refused';
  let real: string;
  try {
    real = await realpath(path.join(root, ...parts));
  } catch (error) {
    // Any other failure (EACCES, ELOOP) is answered 500 with its message by the request handler.
    return whenAbsent('missing' as const, 'ENOTDIR')(error);
  }
  return real === root || real.startsWith(root + path.sep) ? real : 'refused';
}

function notModified(request: IncomingMessage, etag: string, modified: Date): boolean {
  const match = request.headers['if-none-match'];
  if (match !== undefined)
    return match.split(',').some((tag) => tag.trim() === '*' || tag.trim().replace(/^W\//, '') === etag);
  const since = request.headers['if-modified-since'];
  if (since === undefined) return false;
  const date = Date.parse(since);
  return !Number.isNaN(date) && Math.floor(modified.getTime() / 1000) <= Math.floor(date / 1000);
}

/** If-Range (RFC 9110 13.1.5): the range holds only for the same strong ETag or the exact Last-Modified. */
function rangeStillValid(request: IncomingMessage, etag: string, lastModified: string): boolean {
  const condition = request.headers['if-range'];
  if (typeof condition !== 'string') return true;
  return condition.startsWith('"') ? condition === etag : condition === lastModified;
}

async function respond(root: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  const file = await resolveRequest(root, request.url ?? '/');
  if (file === 'refused') {
    response.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden\n');
    return;
  }
  const info = file === 'missing' ? null : await stat(file).catch(whenAbsent(null));
  if (file === 'missing' || !info?.isFile()) {
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  const etag = etagOf(info);
  const lastModified = info.mtime.toUTCString();
  const headers: Record<string, string | number> = {
    etag,
    'last-modified': lastModified,
    'accept-ranges': 'bytes',
    'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
  };
  if (notModified(request, etag, info.mtime)) {
    response.writeHead(304, headers).end();
    return;
  }
  const header = request.headers.range;
  const range =
    header !== undefined && rangeStillValid(request, etag, lastModified) ? parseRange(header, info.size) : null;
  if (range === 'unsatisfiable') {
    response.writeHead(416, { ...headers, 'content-range': `bytes */${info.size}` }).end();
    return;
  }
  const { start, end } = range ?? { start: 0, end: info.size - 1 };
  const length = Math.max(0, end - start + 1);
  headers['content-length'] = length;
  if (range) headers['content-range'] = `bytes ${start}-${end}/${info.size}`;
  response.writeHead(range ? 206 : 200, headers);
  if (request.method === 'HEAD' || length === 0) {
    response.end();
    return;
  }
  await pipeline(createReadStream(file, { start, end, highWaterMark: 1 << 20 }), response);
}

/**
 * `nuwax serve DIR` (SPEC 11): a static file server for demos and tests, with single Range
 * requests, ETag/Last-Modified, If-Range, If-None-Match and HEAD. Nothing outside DIR is served.
 */
export async function startServer(options: { root: string; port?: number; host?: string }): Promise<StaticServer> {
  const root = await realpath(path.resolve(options.root)).catch((error: unknown) => {
    throw new NuwaxError(ErrorCodes.E_USAGE, `Cannot serve ${options.root}: ${(error as Error).message}`, {
      cause: error,
    });
  });
  const server = createServer((request, response) => {
    respond(root, request, response).catch((error: unknown) => {
      // A client that goes away mid-body ends the pipeline with an error: nothing left to answer.
      if (!response.headersSent)
        response.writeHead(500, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`);
      else response.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(
        new NuwaxError(ErrorCodes.E_USAGE, `Cannot listen on ${host}:${options.port ?? 0}: ${error.message}`, {
          cause: error,
        }),
      ),
    );
    server.listen(options.port ?? 0, host, resolve);
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}/`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
