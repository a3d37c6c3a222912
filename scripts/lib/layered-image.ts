/**
 * Application images of several layers, built offline: a `docker import` of busybox as the base,
 * then one `COPY` per layer of random (incompressible) bytes with the legacy builder, which needs
 * no registry. A second version rewrites only the last layer, as an application release would.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { importBusyboxImage } from './sample-app.js';

export interface LayerSpec {
  /** File name in the build context (and under /layers in the image). */
  name: string;
  bytes: number;
}

function writeRandom(file: string, bytes: number): void {
  const fd = openSync(file, 'w');
  try {
    for (let written = 0; written < bytes; ) {
      const chunk = randomBytes(Math.min(1 << 20, bytes - written));
      writeSync(fd, chunk);
      written += chunk.length;
    }
  } finally {
    closeSync(fd);
  }
}

function docker(args: string[], cwd?: string): string {
  const result = spawnSync('docker', args, {
    cwd,
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`docker ${args.join(' ')} failed: ${result.stderr?.toString()}`);
  return result.stdout.toString().trim();
}

/**
 * Builds `tag` FROM `base` with one layer per spec, in `context`; a layer whose file exists there
 * already is kept as it is (so a second build reuses every layer but the rewritten ones).
 */
export function buildLayeredImage(
  tag: string,
  base: string,
  context: string,
  layers: LayerSpec[],
  rewrite: string[] = [],
): string {
  mkdirSync(context, { recursive: true });
  for (const layer of layers) {
    const file = path.join(context, layer.name);
    if (rewrite.includes(layer.name) || !existsSync(file)) writeRandom(file, layer.bytes);
  }
  const copies = layers.map((layer) => `COPY ${layer.name} /layers/${layer.name}`).join('\n');
  writeFileSync(path.join(context, 'Dockerfile'), `FROM ${base}\n${copies}\n`);
  docker(['build', '-q', '-t', tag, '.'], context);
  return docker(['image', 'inspect', '--format', '{{.Id}}', tag]);
}

/** The busybox base image the layered images build on. */
export function buildBaseImage(tag: string): string {
  return importBusyboxImage(tag);
}
