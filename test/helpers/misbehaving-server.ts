import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * How the server answers one request. Strings are the usual misbehaviours; `{ status }` answers
 * that status (with an optional Retry-After).
 */
export type Behaviour =
  | 'normal'
  /** 200 with the whole file even to a Range request. */
  | 'ignore-range'
  /** Sends half of the body (of what it would send), then cuts the connection. */
  | 'cut-half'
  /** Resets the connection before answering. */
  | 'reset'
  /** Sends the headers, then nothing. */
  | 'stall'
  /** Sends the headers, then one byte every `trickleMs` (each byte in time for any stall timeout). */
  | 'trickle'
  /** 206 whose Content-Range starts at 0 whatever the Range asked. */
  | 'wrong-content-range'
  /** Ignores If-Range and answers 206 under a new ETag (the file changed under a broken server). */
  | 'new-etag-206'
  /** 416 whatever the Range. */
  | 'range-not-satisfiable'
  /** 200 announcing (and sending) 10 bytes more than the file. */
  | 'longer-announced'
  /** Correct Content-Length, then 10 more bytes on the wire after the body. */
  | 'extra-bytes'
  /** Chunked (no length), ends cleanly after half of the body. */
  | 'chunked-short'
  /** Chunked (no length), sends the body and 10 more bytes. */
  | 'chunked-longer'
  /** 302 to /moved/<name>, which serves the file. */
  | 'redirect'
  /** 302 to another URL of its own, for ever (each hop a new query). */
  | 'redirect-loop'
  | { status: number; retryAfter?: number };

export interface RecordedRequest {
  url: string;
  range: string | undefined;
  ifRange: string | undefined;
  behaviour: Behaviour;
}

/**
 * A file server on 127.0.0.1 (port 0) that misbehaves on purpose: each request takes the next
 * behaviour from `queue` (then `fallback`, normally 'normal'). It counts the body bytes it wrote,
 * so a test can assert what crossed the wire. Honest requests get ETag, Last-Modified, Range and
 * If-Range right.
 */
export class MisbehavingServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  url = '';
  origin = '';
  bytesSent = 0;
  requests: RecordedRequest[] = [];
  queue: Behaviour[] = [];
  fallback: Behaviour = 'normal';
  etag: string | null = '"v1"';
  lastModified: string | null = 'Tue, 24 Nov 2026 10:00:00 GMT';
  /** Bytes per second for every body (0: as fast as possible), for kill and abort tests. */
  throttle = 0;
  /** Milliseconds between two bytes of a 'trickle' body. */
  trickleMs = 50;

  constructor(
    public content: Buffer,
    private readonly name = 'file.tar.gz',
  ) {}

  async start(): Promise<this> {
    return this.startOn(0);
  }

  /** Listens on a given port (a host that comes back where it was). */
  async startOn(port: number): Promise<this> {
    this.server = createServer((request, response) => this.handle(request, response));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.url = `${this.origin}/${this.name}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const behaviour = this.queue.shift() ?? this.fallback;
    this.requests.push({
      url: request.url ?? '',
      range: request.headers.range,
      ifRange: request.headers['if-range'] as string | undefined,
      behaviour,
    });
    if (typeof behaviour === 'object') {
      response.writeHead(
        behaviour.status,
        behaviour.retryAfter === undefined ? {} : { 'retry-after': String(behaviour.retryAfter) },
      );
      response.end(`status ${behaviour.status}`);
      return;
    }
    if (behaviour === 'reset') {
      request.socket.resetAndDestroy();
      return;
    }
    if (behaviour === 'redirect' || behaviour === 'redirect-loop') {
      response.writeHead(302, {
        location: behaviour === 'redirect' ? `/moved/${this.name}` : `/${this.name}?hop=${this.requests.length}`,
      });
      response.end();
      return;
    }
    this.serveFile(request, response, behaviour);
  }

  private validators(): Record<string, string> {
    const headers: Record<string, string> = { 'accept-ranges': 'bytes' };
    if (this.etag) headers.etag = this.etag;
    if (this.lastModified) headers['last-modified'] = this.lastModified;
    return headers;
  }

  private serveFile(request: IncomingMessage, response: ServerResponse, behaviour: Behaviour): void {
    const size = this.content.length;
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
    const ifRange = request.headers['if-range'];
    const validatorMatches = ifRange === undefined || ifRange === this.etag || ifRange === this.lastModified;
    if (
      behaviour === 'range-not-satisfiable' ||
      (range && validatorMatches && Number(range[1]) >= size && behaviour === 'normal')
    ) {
      response.writeHead(416, { 'content-range': `bytes */${size}` });
      response.end();
      return;
    }
    const partial =
      range !== null && behaviour !== 'ignore-range' && (validatorMatches || behaviour === 'new-etag-206');
    if (partial) {
      const start = Number(range[1]);
      const claimed = behaviour === 'wrong-content-range' ? 0 : start;
      if (behaviour === 'new-etag-206') this.etag = '"changed"';
      response.writeHead(206, {
        ...this.validators(),
        'content-length': size - start,
        'content-range': `bytes ${claimed}-${size - 1}/${size}`,
      });
      this.send(response, this.content.subarray(start), behaviour);
      return;
    }
    if (behaviour === 'chunked-short' || behaviour === 'chunked-longer') {
      response.writeHead(200, this.validators());
      const body =
        behaviour === 'chunked-short'
          ? this.content.subarray(0, Math.floor(size / 2))
          : Buffer.concat([this.content, Buffer.alloc(10, 1)]);
      this.send(response, body, behaviour);
      return;
    }
    const extra = behaviour === 'longer-announced' ? 10 : 0;
    response.writeHead(200, { ...this.validators(), 'content-length': size + extra });
    this.send(response, extra ? Buffer.concat([this.content, Buffer.alloc(extra, 1)]) : this.content, behaviour);
  }

  private send(response: ServerResponse, body: Buffer, behaviour: Behaviour): void {
    if (behaviour === 'stall') {
      response.flushHeaders();
      return;
    }
    if (behaviour === 'trickle') {
      response.flushHeaders();
      let sent = 0;
      const drip = setInterval(() => {
        if (response.destroyed || sent >= body.length) return clearInterval(drip);
        response.write(body.subarray(sent, sent + 1));
        sent += 1;
        this.bytesSent += 1;
      }, this.trickleMs);
      response.once('close', () => clearInterval(drip));
      return;
    }
    const limit = behaviour === 'cut-half' ? Math.floor(body.length / 2) : body.length;
    const piece = this.throttle > 0 ? Math.max(1024, Math.floor(this.throttle / 20)) : 64 * 1024;
    let offset = 0;
    const pump = (): void => {
      while (offset < limit && !response.destroyed) {
        const chunk = body.subarray(offset, Math.min(limit, offset + piece));
        offset += chunk.length;
        this.bytesSent += chunk.length;
        const more = response.write(chunk);
        if (this.throttle > 0) {
          setTimeout(pump, 50);
          return;
        }
        if (!more) {
          response.once('drain', pump);
          return;
        }
      }
      this.finish(response, behaviour);
    };
    pump();
  }

  private finish(response: ServerResponse, behaviour: Behaviour): void {
    if (response.destroyed) return;
    if (behaviour === 'cut-half') {
      // FIN after the bytes written so far: the client gets exactly half, then a premature close.
      response.socket?.end();
      return;
    }
    if (behaviour === 'extra-bytes') {
      // Past the announced length, straight onto the socket: a client must not take these into the file.
      response.end(() => response.socket?.write(Buffer.alloc(10, 2)));
      return;
    }
    response.end();
  }
}
