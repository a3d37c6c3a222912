import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small release server on 127.0.0.1 for manifest tests: static files with ETags and 304s, and
 * the nuwax API (client registration, checkVersion with X-Client-ID, 401 for a forgotten client).
 */
export class ReleaseServer {
  readonly files = new Map<string, Buffer>();
  readonly statuses: number[] = [];
  readonly requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }> = [];
  readonly clients = new Set<string>();
  registrations = 0;
  /** Path of the manifest served by the API at /api/v1/docker/checkVersion. */
  apiManifest = '/manifest.json';
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((request, response) => this.handle(request, response));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  set(name: string, content: string | Buffer): void {
    this.files.set(name, Buffer.from(content));
  }

  count(status: number): number {
    return this.statuses.filter((value) => value === status).length;
  }

  private send(
    response: ServerResponse,
    status: number,
    body: Buffer | string = '',
    headers: Record<string, string> = {},
  ): void {
    this.statuses.push(status);
    response.writeHead(status, headers);
    response.end(body);
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', this.url);
    this.requests.push({ method: request.method ?? 'GET', url: url.pathname, headers: request.headers });
    if (url.pathname === '/api/v1/clients/register' && request.method === 'POST') {
      request.resume();
      request.on('end', () => {
        const id = randomUUID();
        this.clients.add(id);
        this.registrations += 1;
        this.send(response, 200, JSON.stringify({ client_id: id }), { 'content-type': 'application/json' });
      });
      return;
    }
    let name = url.pathname;
    if (name === '/api/v1/docker/checkVersion') {
      const id = request.headers['x-client-id'];
      if (typeof id !== 'string' || !this.clients.has(id)) {
        this.send(response, 401, '{"error":"unknown client"}');
        return;
      }
      name = this.apiManifest;
    } else if (name === '/api/v1/docker/checkVersion.sig') {
      name = `${this.apiManifest}.sig`;
    }
    const body = this.files.get(name);
    if (!body) {
      this.send(response, 404, 'not found');
      return;
    }
    const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
    if (request.headers['if-none-match'] === etag) {
      this.send(response, 304, '', { etag });
      return;
    }
    this.send(response, 200, body, { etag, 'content-length': String(body.length) });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
