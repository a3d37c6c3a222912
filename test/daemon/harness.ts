import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Config, parseConfig } from '../../src/config/index.js';
import type { CycleRequest, DaemonPorts } from '../../src/daemon/index.js';
import { silentLogger } from '../../src/log/index.js';
import { openStore, type Store } from '../../src/state/index.js';
import type { UpgradeResult } from '../../src/upgrade/index.js';

/**
 * A real home for daemon tests: a temp folder, a real SQLite store, a config parsed from TOML.
 * The upgrade itself is injected (the brief's seam, DaemonPorts.upgrade): these tests are about
 * when and how the daemon calls it; the real upgrade runs in cli.test.ts through the CLI.
 */
export interface Home {
  home: string;
  store: Store;
  lockFile: string;
  config(toml?: string): Config;
}

export async function withHome<T>(work: (home: Home) => Promise<T>): Promise<T> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'nuwax-daemon-'));
  const store = openStore(path.join(home, 'data', 'nuwax.db'));
  try {
    return await work({
      home,
      store,
      lockFile: path.join(home, 'data', 'nuwax.lock'),
      config: (toml = '') => parseConfig(`[versions]\ndocker_service = "1.0.0"\n${toml}`),
    });
  } finally {
    store.close();
    await rm(home, { recursive: true, force: true });
  }
}

export const logger = silentLogger;

export const results = {
  staged: (version = '1.1.0'): UpgradeResult => ({
    status: 'staged',
    version,
    strategy: 'full',
    package: '/tmp/p.tar.gz',
    upgrade_id: 1,
    steps: [],
  }),
  success: (to = '1.1.0'): UpgradeResult => ({
    status: 'success',
    from: '1.0.0',
    version: to,
    strategy: 'full',
    executed_scripts: [],
    backup_id: 1,
    downtime_ms: 5,
    steps: [],
    upgrade_id: 1,
  }),
  upToDate: (): UpgradeResult => ({ status: 'up_to_date', version: '1.0.0', offered: '1.0.0', reason: 'same version' }),
  failed: (code: string, step = 'checking'): UpgradeResult => ({
    status: 'failed',
    error: { code, message: `fake ${code}` },
    step,
    changed: false,
  }),
};

export interface FakeUpgrade {
  ports: DaemonPorts;
  calls: CycleRequest[];
}

/** An upgrade port that records each request and answers with `answer` (by call number). */
export function fakeUpgrade(
  answer: (request: CycleRequest, call: number) => Promise<UpgradeResult> | UpgradeResult,
  extra: Partial<DaemonPorts> = {},
): FakeUpgrade {
  const calls: CycleRequest[] = [];
  return {
    calls,
    ports: {
      ...extra,
      upgrade: async (request) => {
        calls.push(request);
        return answer(request, calls.length);
      },
    },
  };
}

/** A download that runs until its signal fires (or 20 s), then fails as the downloader would. */
export async function slowDownload(request: CycleRequest): Promise<UpgradeResult> {
  request.onEvent({ type: 'step', step: 'checking', status: 'running' });
  request.onEvent({ type: 'step', step: 'checking', status: 'done', ms: 1 });
  request.onEvent({ type: 'step', step: 'downloading', status: 'running' });
  await sleep(20_000, undefined, { signal: request.signal }).catch(() => undefined);
  return results.failed(request.signal.aborted ? 'E_ABORTED' : 'E_TIMEOUT', 'downloading');
}

/** A switch that takes `ms` and reports whether its signal was aborted meanwhile. */
export function slowSwitch(ms: number, seen: { abortedDuringSwitch?: boolean; finished?: boolean }) {
  return async (request: CycleRequest): Promise<UpgradeResult> => {
    request.onEvent({ type: 'step', step: 'loading_images', status: 'done', ms: 1 });
    request.onEvent({ type: 'step', step: 'backing_up', status: 'running' });
    await sleep(ms);
    seen.abortedDuringSwitch = request.signal.aborted;
    seen.finished = true;
    return results.success();
  };
}

/** Polls until `check` holds, at most `ms`. */
export async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await sleep(10);
  }
}
