import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';

/**
 * A release server on 127.0.0.1 for the daemon's CLI tests: static files with an ETag and
 * `Range: bytes=N-` (validated by If-Range), an optional throttle, and a count of the body bytes
 * sent per path, so a test can assert that a resume did not download again what it had.
 */
export class FileServer {
  readonly files = new Map<string, Buffer>();
  readonly sent = new Map<string, number>();
  readonly ranges: Array<{ path: string; range: string | undefined }> = [];
  /** Bytes per second for every response body (0 = full speed). */
  throttle = 0;
  url = '';
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  async start(): Promise<this> {
    this.server = createServer((request, response) => this.handle(request, response));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const name = new URL(request.url ?? '/', this.url).pathname;
    this.ranges.push({ path: name, range: request.headers.range });
    const content = this.files.get(name);
    if (!content) {
      response.writeHead(404);
      response.end();
      return;
    }
    const etag = `"${content.length}"`;
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
    const ifRange = request.headers['if-range'];
    const start = range && (ifRange === undefined || ifRange === etag) ? Number(range[1]) : 0;
    if (start > 0)
      response.writeHead(206, {
        etag,
        'accept-ranges': 'bytes',
        'content-length': content.length - start,
        'content-range': `bytes ${start}-${content.length - 1}/${content.length}`,
      });
    else response.writeHead(200, { etag, 'accept-ranges': 'bytes', 'content-length': content.length });
    this.pump(name, response, content.subarray(start));
  }

  private pump(name: string, response: ServerResponse, body: Buffer): void {
    let offset = 0;
    const next = (): void => {
      while (offset < body.length && !response.destroyed) {
        const piece = this.throttle > 0 ? Math.max(1024, Math.floor(this.throttle / 20)) : 64 * 1024;
        const chunk = body.subarray(offset, offset + piece);
        offset += chunk.length;
        this.sent.set(name, (this.sent.get(name) ?? 0) + chunk.length);
        const more = response.write(chunk);
        if (this.throttle > 0) {
          setTimeout(next, 50);
          return;
        }
        if (!more) {
          response.once('drain', next);
          return;
        }
      }
      if (!response.destroyed) response.end();
    };
    next();
  }
}
