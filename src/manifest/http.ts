import { type Dispatcher, getGlobalDispatcher, request } from '../http/index.js';
import { ErrorCodes, NuwaxError, UNREACHABLE_CODES } from '../errors/index.js';

const USER_AGENT = 'nuwax';
/** Redirects followed per request, as the package download does. */
const MAX_REDIRECTS = 5;

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The URL that answered, after redirects. */
  url: string;
}

/** curl's --speed-limit/--speed-time, for small answers too: a trickle is a failed request. */
export interface MinRate {
  bytesPerSecond: number;
  windowMs: number;
}

export interface HttpOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** The largest body accepted; more is E_MANIFEST. */
  limit: number;
  minRate: MinRate | null;
  signal?: AbortSignal;
  dispatcher?: Dispatcher;
}

export function header(headers: HttpAnswer['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * One request, following redirects itself so that a loop is named as one (undici's interceptor
 * reports a loop as an invalid argument), with the body bounded in size and in rate.
 */
export async function httpRequest(url: string, options: HttpOptions): Promise<HttpAnswer> {
  const visited = new Set<string>();
  let current = url;
  let method = options.method ?? 'GET';
  let body = options.body;
  for (;;) {
    visited.add(current);
    const answer = await requestOnce(current, { ...options, method, body });
    const location = header(answer.headers, 'location');
    if (answer.status < 300 || answer.status >= 400 || answer.status === 304 || !location) return answer;
    const next = new URL(location, current).toString();
    if (visited.has(next) || visited.size > MAX_REDIRECTS) {
      const hops = visited.has(next) ? `back to ${next}` : `more than ${MAX_REDIRECTS} times`;
      throw new NuwaxError(
        ErrorCodes.E_HTTP,
        `The release server redirects in a loop: ${url} redirects ${hops} (HTTP ${answer.status})`,
        { details: { url, statusCode: answer.status, redirects: visited.size, redirectLoop: true } },
      );
    }
    if (answer.status === 303 || ((answer.status === 301 || answer.status === 302) && method === 'POST')) {
      method = 'GET';
      body = undefined;
    }
    current = next;
  }
}

async function requestOnce(url: string, options: HttpOptions): Promise<HttpAnswer> {
  const rateStop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, rateStop.signal]) : rateStop.signal;
  const meter = new RateMeter(url, options.minRate, (error) => rateStop.abort(error));
  try {
    const response = await request(url, {
      method: options.method ?? 'GET',
      headers: { 'user-agent': USER_AGENT, ...options.headers },
      body: options.body,
      signal,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      dispatcher: options.dispatcher ?? getGlobalDispatcher(),
    });
    meter.start();
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of response.body) {
      total += chunk.length;
      meter.add(chunk.length);
      if (total > options.limit)
        throw new NuwaxError(ErrorCodes.E_MANIFEST, `The answer from ${url} is larger than ${options.limit} bytes`);
      chunks.push(Buffer.from(chunk));
    }
    return { status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks), url };
  } catch (error) {
    if (meter.failure) throw meter.failure;
    if (error instanceof NuwaxError) throw error;
    if (options.signal?.aborted) throw new NuwaxError(ErrorCodes.E_ABORTED, 'Cancelled', { cause: error });
    throw networkError(url, error);
  } finally {
    meter.stop();
  }
}

function networkError(url: string, error: unknown): NuwaxError {
  const cause = error as NodeJS.ErrnoException;
  const code = cause.code ?? '';
  const origin = new URL(url).origin;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT')
    return new NuwaxError(ErrorCodes.E_STALL, `No answer from ${origin} within the timeout ([server] timeout)`, {
      cause: error,
      details: { url, errno: code },
    });
  return new NuwaxError(
    ErrorCodes.E_NETWORK,
    `Cannot reach the release server at ${origin} (${code || cause.message})`,
    {
      cause: error,
      details: { url, errno: code || undefined, unreachable: UNREACHABLE_CODES.has(code) },
    },
  );
}

/** Counts body bytes per window; below the minimum rate it fails the request with E_STALL. */
class RateMeter {
  failure: NuwaxError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private windowStart = 0;
  private bytes = 0;

  constructor(
    private readonly url: string,
    private readonly minRate: MinRate | null,
    private readonly abort: (error: NuwaxError) => void,
  ) {}

  start(): void {
    const minRate = this.minRate;
    if (!minRate || minRate.bytesPerSecond <= 0 || minRate.windowMs <= 0) return;
    this.windowStart = Date.now();
    this.timer = setInterval(() => this.check(minRate), Math.max(10, Math.min(1000, minRate.windowMs / 4)));
  }

  add(count: number): void {
    this.bytes += count;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private check(minRate: MinRate): void {
    const elapsed = Date.now() - this.windowStart;
    if (elapsed < minRate.windowMs) return;
    if ((this.bytes * 1000) / elapsed >= minRate.bytesPerSecond) {
      this.windowStart = Date.now();
      this.bytes = 0;
      return;
    }
    this.stop();
    this.failure = new NuwaxError(
      ErrorCodes.E_STALL,
      `${new URL(this.url).origin} sent ${this.bytes} bytes in ${(elapsed / 1000).toFixed(1)} s, ` +
        `below the minimum of ${minRate.bytesPerSecond} bytes/s ([download] min_rate)`,
      { details: { url: this.url, received: this.bytes, minRate: minRate.bytesPerSecond } },
    );
    this.abort(this.failure);
  }
}
