/** A free TCP port and an nginx on 127.0.0.1, for the scripts that serve files to nuwax. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * nginx serving `site` on 127.0.0.1:`port`, its config and logs under `root`. With `accessLog`, it
 * logs each request's URI, status and body bytes to `root/logs/access.log`.
 */
export async function startNginx(
  root: string,
  site: string,
  port: number,
  options: { accessLog?: boolean } = {},
): Promise<ChildProcess> {
  const config = path.join(root, 'nginx.conf');
  const logs = path.join(root, 'logs');
  mkdirSync(logs, { recursive: true });
  const access = options.accessLog
    ? `log_format bench '$request_uri $status $body_bytes_sent';\n  access_log ${logs}/access.log bench;`
    : 'access_log off;';
  writeFileSync(
    config,
    `daemon off; master_process off; worker_processes 1; error_log ${logs}/error.log; pid ${logs}/nginx.pid;
events { worker_connections 64; }
http { sendfile on; ${access}
  client_body_temp_path ${logs}; proxy_temp_path ${logs}; fastcgi_temp_path ${logs};
  uwsgi_temp_path ${logs}; scgi_temp_path ${logs};
  server { listen 127.0.0.1:${port}; root ${site}; } }\n`,
  );
  const nginx = spawn('/usr/sbin/nginx', ['-c', config, '-p', root], { stdio: 'ignore' });
  for (let wait = 0; wait < 100; wait += 1) {
    const probe = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/`], {
      encoding: 'utf8',
    });
    if (probe.stdout.trim() !== '000') return nginx;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('nginx did not start');
}
