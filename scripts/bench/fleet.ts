/**
 * `npm run bench:fleet`: 10,000 virtual boxes in one process against one real origin (nuwax's own
 * `serve` on 127.0.0.1, behind a byte-counting TCP relay). Each box runs the real jitter
 * (`jitterDelayMs`), the real conditional poll (`fetchManifest`, its own ETag cache), the real
 * signature check, strategy and rollout; only the clock is simulated: arrivals are ordered by
 * simulated time and sent with bounded concurrency. Prints the arrivals per minute across the
 * jitter window, the origin's peak requests per second, bytes per idle poll and the share of boxes
 * that took a release at rollout 10 %, 50 % and 100 %.
 */
import { reportRow } from './report.js';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Agent } from 'undici';
import { parseConfig } from '../../src/config/index.js';
import { jitterDelayMs, validateSchedule } from '../../src/daemon/index.js';
import { fetchManifest, generateKeyPair, loadPrivateKey, signBytes } from '../../src/manifest/index.js';
import { startServer } from '../../src/release/index.js';
import type { Store } from '../../src/state/index.js';
import { decideStrategy, holdBack, rolloutStatus } from '../../src/strategy/index.js';

const BOXES = Number(process.env.BOXES ?? 10_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const JITTER = '10m';
const CHECK = '*/30 * * * *';

/** Each box's kv: the only part of the store the manifest fetch uses (its ETag cache). */
class MemoryKv {
  private readonly values = new Map<string, unknown>();
  get<T>(key: string): T | undefined {
    return this.values.get(key) as T | undefined;
  }
  set(key: string, value: unknown): void {
    this.values.set(key, value);
  }
  delete(key: string): void {
    this.values.delete(key);
  }
}

interface Box {
  id: string;
  version: string;
  store: Store;
}

/** mulberry32: a seeded random source, so every run draws the same jitter. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

/** A TCP relay in front of the origin that counts every byte both ways. */
async function countingRelay(target: URL): Promise<{ url: string; bytes: () => number; close(): Promise<void> }> {
  let bytes = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      socket.on('error', () => socket.destroy());
      socket.on('close', () => sockets.delete(socket));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    // Each byte passes the relay twice (in and out): count it once.
    bytes: () => bytes / 2,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const root = mkdtempSync(path.join(os.tmpdir(), 'nuwax-bench-fleet-'));
const keys = generateKeyPair();
const privateKey = loadPrivateKey(keys.privateKeyPem);
const hash = createHash('sha256').update('package').digest('hex');

function publish(rollout: { percent: number; salt: string }): void {
  const full = { url: 'full-1.1.0.tar.gz', hash: `sha256:${hash}`, size: 50 * 1024 * 1024 };
  const manifest = Buffer.from(
    JSON.stringify({
      version: '1.1.0',
      release_date: '2026-11-20T10:00:00Z',
      release_notes: 'A release for the fleet',
      packages: { full },
      platforms: { x86_64: full, aarch64: full },
      rollout,
    }),
  );
  writeFileSync(path.join(root, 'manifest.json'), manifest);
  writeFileSync(path.join(root, 'manifest.json.sig'), signBytes(manifest, privateKey));
}

async function main(): Promise<void> {
  validateSchedule(CHECK);
  publish({ percent: 10, salt: 'fleet-1.1.0' });
  const origin = await startServer({ root, port: 0, host: '127.0.0.1' });
  const relay = await countingRelay(new URL(origin.url));
  const dispatcher = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 10_000 });
  const config = parseConfig(
    `[server]\nmanifest_url = "${new URL('manifest.json', relay.url)}"\n` +
      `[security]\npublic_keys = ["${keys.publicKey}"]\n[schedule]\ncheck = "${CHECK}"\njitter = "${JITTER}"\n`,
  );
  const random = seeded(17);
  const boxes: Box[] = Array.from({ length: BOXES }, (_, index) => ({
    id: `box-${index.toString(36)}-${Math.floor(random() * 1e9).toString(36)}`,
    version: '1.0.0',
    store: { kv: new MemoryKv() } as unknown as Store,
  }));

  /** One cron tick: every box waits its jitter, then polls and decides. Returns arrival times (ms). */
  const tick = async (): Promise<{ arrivals: number[]; wallMs: number; requests: number }> => {
    const arrivals = boxes.map(() => jitterDelayMs(config.schedule.jitter, random));
    const order = boxes.map((_, index) => index).sort((a, b) => arrivals[a]! - arrivals[b]!);
    let next = 0;
    let requests = 0;
    const started = Date.now();
    const worker = async () => {
      while (next < order.length) {
        const box = boxes[order[next++]!]!;
        const fetched = await fetchManifest({ config, store: box.store, dispatcher });
        requests += 2;
        const { manifest } = fetched;
        const decision = holdBack(
          decideStrategy({
            currentVersion: box.version,
            hostArch: 'x64',
            manifest,
            forceFull: false,
            composeFileExists: true,
            clientVersion: '0.1.0',
            now: new Date(),
          }),
          rolloutStatus(manifest.rollout, box.id, manifest.version),
          false,
        );
        if (decision.strategy !== 'none') box.version = decision.offered;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    return { arrivals, wallMs: Date.now() - started, requests };
  };
  const share = () => (boxes.filter((box) => box.version === '1.1.0').length / BOXES) * 100;

  const started = Date.now();
  const first = await tick();
  const at10 = share();
  const before = relay.bytes();
  const idle = await tick();
  const idleBytes = (relay.bytes() - before) / BOXES;
  const took10 = new Set(boxes.filter((box) => box.version === '1.1.0').map((box) => box.id));
  publish({ percent: 50, salt: 'fleet-1.1.0' });
  const third = await tick();
  const at50 = share();
  const kept = boxes.filter((box) => took10.has(box.id)).every((box) => box.version === '1.1.0');
  publish({ percent: 100, salt: 'fleet-1.1.0' });
  const fourth = await tick();
  const at100 = share();
  const wallMs = Date.now() - started;

  // Arrivals per minute and the busiest simulated second, from the first tick's jitter draws.
  const minutes = new Array<number>(Math.ceil(config.schedule.jitter / 60)).fill(0);
  const seconds = new Map<number, number>();
  for (const ms of first.arrivals) {
    minutes[Math.min(minutes.length - 1, Math.floor(ms / 60_000))]! += 1;
    seconds.set(Math.floor(ms / 1000), (seconds.get(Math.floor(ms / 1000)) ?? 0) + 1);
  }
  const peakBoxes = Math.max(...seconds.values());
  const widest = Math.max(...minutes);
  console.log(`fleet: ${BOXES} boxes, check "${CHECK}", jitter ${JITTER}, origin nuwax serve on 127.0.0.1`);
  console.log('arrivals per minute after a cron tick:');
  minutes.forEach((count, minute) => {
    const bar = '#'.repeat(Math.round((count / widest) * 50));
    console.log(
      `  ${String(minute).padStart(2)}-${String(minute + 1).padEnd(2)} min ${String(count).padStart(6)} ${bar}`,
    );
  });
  console.log(
    `origin peak: ${peakBoxes * 2} requests/s (${peakBoxes} boxes in the busiest simulated second, ` +
      `manifest + .sig each); without jitter: ${BOXES * 2} requests in the same second`,
  );
  const served = first.requests + idle.requests + third.requests + fourth.requests;
  console.log(
    `origin served ${served} real requests in ${(wallMs / 1000).toFixed(1)} s ` +
      `(${Math.round((served / wallMs) * 1000)} requests/s of wall time)`,
  );
  console.log(`bytes per idle poll (manifest 304 + .sig, headers included): ${Math.round(idleBytes)} B`);
  console.log(
    `took the release: rollout 10 % → ${at10.toFixed(2)} %, 50 % → ${at50.toFixed(2)} %, ` +
      `100 % → ${at100.toFixed(2)} %` +
      ` (every box of the 10 % kept it at 50 %: ${kept ? 'yes' : 'NO'})`,
  );
  const within = [
    [10, at10],
    [50, at50],
    [100, at100],
  ].every(([percent, value]) => Math.abs(percent! - value!) <= 1);
  if (!within || !kept) process.exitCode = 1;
  reportRow({
    what: `fleet of ${BOXES} boxes, jitter ${JITTER}, one origin`,
    standard: `without jitter: ${BOXES * 2} requests in one second`,
    nuwax:
      `origin peak ${peakBoxes * 2} requests/s; ${Math.round(idleBytes)} B per idle poll; took the release at ` +
      `10/50/100 %: ${at10.toFixed(2)} / ${at50.toFixed(2)} / ${at100.toFixed(2)} %`,
    goal: 'rollout shares within 1 point, the 10 % kept at 50 %',
    met: within && kept,
    runs: [`one seeded run (identical across runs), ${(wallMs / 1000).toFixed(1)} s of wall time`],
  });
  await dispatcher.close();
  await relay.close();
  await origin.close();
}

try {
  await main();
} finally {
  rmSync(root, { recursive: true, force: true });
}
