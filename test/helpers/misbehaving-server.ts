import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Behaviour =
  | 'normal'
  | 'ignore-range'
  | 'cut-half'
  | 'stall'
  | 'wrong-content-range'
  | 'status-500'
  | 'status-404'
  | 'longer-body'
  | 'redirect';

/**
 * A file server on 127.0.0.1 that misbehaves on purpose, one behaviour per request in turn (then
 * normal), and counts the body bytes it sent, so tests can assert what crossed the wire.
 */
export class MisbehavingServer {
  private server: Server | undefined;
  url = '';
  bytesSent = 0;
  requests: Array<{ range: string | undefined; ifRange: string | undefined; url: string }> = [];
  queue: Behaviour[] = [];
  etag = '"v1"';
  /** Throttle every response (bytes per second), for kill/abort tests. */
  slow = 0;

  constructor(public content: Buffer) {}

  async start(): Promise<this> {
    this.server = createServer((request, response) => this.handle(request, response));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/file.tar.gz`;
    return this;
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    this.requests.push({ range: request.headers.range, ifRange: request.headers['if-range'] as string | undefined, url: request.url ?? '' });
    const behaviour = this.queue.shift() ?? 'normal';
    if (behaviour === 'redirect') {
      response.writeHead(302, { location: '/moved/file.tar.gz' });
      response.end();
      return;
    }
    if (behaviour === 'status-500' || behaviour === 'status-404') {
      response.writeHead(behaviour === 'status-500' ? 500 : 404);
      response.end('no');
      return;
    }
    const size = this.content.length;
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
    const validatorMatches = !request.headers['if-range'] || request.headers['if-range'] === this.etag;
    if (range && validatorMatches && behaviour !== 'ignore-range') {
      start = Number(range[1]);
      if (start >= size) {
        response.writeHead(416, { 'content-range': `bytes */${size}` });
        response.end();
        return;
      }
      const claimed = behaviour === 'wrong-content-range' ? 0 : start;
      response.writeHead(206, { etag: this.etag, 'content-length': size - start, 'content-range': `bytes ${claimed}-${size - 1}/${size}` });
    } else {
      const extra = behaviour === 'longer-body' ? 10 : 0;
      response.writeHead(200, { etag: this.etag, 'content-length': size + extra, 'accept-ranges': 'bytes' });
      if (extra) {
        this.send(response, Buffer.concat([this.content, Buffer.alloc(extra)]), behaviour);
        return;
      }
    }
    this.send(response, this.content.subarray(start), behaviour);
  }

  private send(response: ServerResponse, body: Buffer, behaviour: Behaviour): void {
    if (behaviour === 'stall') {
      response.flushHeaders();
      return; // headers, then nothing: the client's stall timeout must fire
    }
    const limit = behaviour === 'cut-half' ? Math.floor(body.length / 2) : body.length;
    const chunk = this.slow > 0 ? Math.max(1024, Math.floor(this.slow / 20)) : 64 * 1024;
    let offset = 0;
    const pump = () => {
      while (offset < limit) {
        const piece = body.subarray(offset, Math.min(limit, offset + chunk));
        offset += piece.length;
        this.bytesSent += piece.length;
        const more = response.write(piece);
        if (this.slow > 0) {
          setTimeout(pump, 50);
          return;
        }
        if (!more) {
          response.once('drain', pump);
          return;
        }
      }
      if (behaviour === 'cut-half') response.socket?.destroy();
      else response.end();
    };
    pump();
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
