import path from 'node:path';
import type { Command } from 'commander';
import { ErrorCodes, NuwaxError } from '../../errors/index.js';
import { startServer } from '../../release/index.js';
import { action } from '../context.js';

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new NuwaxError(ErrorCodes.E_USAGE, `--port must be a number from 0 to 65535, not "${value}"`);
  return port;
}

/** `nuwax serve DIR` (SPEC 11): a static server with Range for demos; runs until SIGINT or SIGTERM. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve a folder over HTTP (Range, ETag, If-Range, 304) for demos and tests')
    .argument('<dir>', 'folder to serve (manifest, signature, packages)')
    .option('--port <port>', 'port (0: any free port)', '8080')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .action(
      action(async (context, dir: string, options: { port: string; host: string }) => {
        const server = await startServer({
          root: path.resolve(dir),
          port: parsePort(options.port),
          host: options.host,
        });
        context.print(`serving ${path.resolve(dir)} at ${server.url} (Ctrl-C to stop)`, {
          url: server.url,
          root: path.resolve(dir),
        });
        const signal = await new Promise<NodeJS.Signals>((resolve) => {
          process.once('SIGINT', () => resolve('SIGINT'));
          process.once('SIGTERM', () => resolve('SIGTERM'));
        });
        context.logger.info({ signal }, 'stopping the server');
        await server.close();
      }),
    );
}
