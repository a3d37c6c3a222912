import { createSocket } from 'node:dgram';
import { createServer, isIPv6 } from 'node:net';
import type { PortProbeResult } from './types.js';

const RESULTS: Record<string, PortProbeResult> = {
  EADDRINUSE: 'in_use',
  EACCES: 'denied',
  EPERM: 'denied',
  EADDRNOTAVAIL: 'no_address',
  EAFNOSUPPORT: 'no_address',
  ENOTFOUND: 'no_address',
};

/**
 * Whether compose could publish this port now: bind it as Docker would (on the host IP, else on
 * every address) and let go at once. Docker's own proxy holding it shows as `in_use` too; the judge
 * tells ours from another process's by the project's containers. Any other error (EINVAL, ...)
 * rejects with the error: it says nothing about the port, and the gather records it as `error`.
 */
export function probePort(hostIp: string | null, port: number, protocol: string): Promise<PortProbeResult> {
  const host = hostIp ?? '0.0.0.0';
  if (protocol !== 'tcp' && protocol !== 'udp') return Promise.resolve('unsupported');
  return new Promise((resolve, reject) => {
    const settle = (error: NodeJS.ErrnoException): void => {
      const result = RESULTS[error.code ?? ''];
      if (result) resolve(result);
      else reject(error);
    };
    if (protocol === 'tcp') {
      const server = createServer();
      server.once('error', settle);
      server.listen({ host, port, exclusive: true }, () => server.close(() => resolve('free')));
      return;
    }
    const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.close();
      settle(error);
    });
    socket.bind({ address: host, port, exclusive: true }, () => socket.close(() => resolve('free')));
  });
}
