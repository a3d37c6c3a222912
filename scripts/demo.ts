/**
 * `npm run demo`: builds a sample release set with `nuwax release`, serves it with `nuwax serve`,
 * and upgrades a sample deployment in a temporary home: a first install of 1.0.0, then 1.0.0 →
 * 1.0.0.1 by patch (through the TUI in a terminal). Without Docker it says so and runs everything
 * up to the service switch (--download-only).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  dockerReachable,
  importBusyboxImage,
  removeImages,
  type SampleVersion,
  writeSampleVersion,
} from './lib/sample-app.js';
import { freePort } from './lib/local-server.js';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';

function say(text: string): void {
  console.log(`\n\u001b[1m== ${text}\u001b[0m`);
}

function nuwax(args: string[], options: { interactive?: boolean; allowFail?: boolean } = {}): number {
  console.log(`$ nuwax ${args.join(' ')}`);
  const result = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  if (result.status !== 0 && !options.allowFail) throw new Error(`nuwax ${args[0]} exited ${result.status}`);
  return result.status ?? 1;
}

async function waitForServer(url: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    if (
      await fetch(url)
        .then((response) => response.ok)
        // Refused while the server is still starting: try again.
        .catch(() => false)
    )
      return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the release server at ${url} did not answer`);
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'nuwax-demo-'));
  const withDocker = dockerReachable();
  const id = `${process.pid}`;
  const appPort = await freePort();
  const tags = [`nuwax-demo-${id}:1`];
  const project = `nuwaxdemo${id}`;
  let server: ChildProcess | undefined;
  try {
    say(
      `Demo in ${work}${withDocker ? '' : ' (Docker is not reachable: running everything up to the service switch)'}`,
    );
    if (withDocker) importBusyboxImage(tags[0]!);
    const A: SampleVersion = {
      version: '1.0.0',
      port: appPort,
      imageTag: tags[0]!,
      page: 'Hello from 1.0.0',
      files: { 'app/config.ini': 'mode=a\n' },
      // A maintenance flag while the services switch (a reverse proxy would show a maintenance page).
      traffic: 'ok',
    };
    const B: SampleVersion = {
      ...A,
      version: '1.0.0.1',
      page: 'Hello from 1.0.0.1',
      files: { 'app/config.ini': 'mode=b\n', 'app/feature.txt': 'new\n' },
      migrations: {
        'up-1.0.0.1.sh':
          '#!/bin/sh\necho "migrating $NUWAX_FROM_VERSION -> $NUWAX_TO_VERSION" >> data/migrations.log\n',
      },
    };
    const versions = path.join(work, 'versions');
    const site = path.join(work, 'site');
    for (const sample of [A, B]) {
      if (withDocker) writeSampleVersion(path.join(versions, sample.version), sample);
      else {
        // Without Docker there is no image to save: the package carries only the files.
        mkdirSync(path.join(versions, sample.version, 'web'), { recursive: true });
        writeFileSync(path.join(versions, sample.version, 'web', 'index.html'), `${sample.page}\n`);
        writeFileSync(path.join(versions, sample.version, 'docker-compose.yml'), 'services: {}\n');
      }
    }

    say('Publisher: cut two signed releases with `nuwax release`');
    nuwax(['release', 'keygen', '-o', path.join(work, 'signing')]);
    mkdirSync(path.join(site, 'stable'), { recursive: true });
    nuwax([
      'release',
      'pack',
      path.join(versions, '1.0.0'),
      '--version',
      '1.0.0',
      '--arch',
      arch,
      '-o',
      path.join(site, 'stable', 'app-1.0.0.tar.gz'),
    ]);
    nuwax([
      'release',
      'manifest',
      '--version',
      '1.0.0',
      '--notes',
      'First release',
      '-o',
      path.join(site, 'stable', 'manifest.json'),
      path.join(site, 'stable', 'app-1.0.0.tar.gz'),
    ]);
    nuwax(['release', 'sign', path.join(site, 'stable', 'manifest.json'), '-k', path.join(work, 'signing.key')]);

    const port = await freePort();
    say(`Serve the releases with \`nuwax serve\` on 127.0.0.1:${port}`);
    server = spawn(process.execPath, [cli, 'serve', site, '--port', String(port)], { stdio: 'inherit' });
    await waitForServer(`http://127.0.0.1:${port}/stable/manifest.json`);

    const home = path.join(work, 'box');
    mkdirSync(home, { recursive: true });
    const publicKey = readFileSync(path.join(work, 'signing.pub'), 'utf8').trim();
    writeFileSync(
      path.join(home, 'config.toml'),
      `# the demo box\n[server]\nmanifest_url = "http://127.0.0.1:${port}/stable/manifest.json"\n\n` +
        `[security]\npublic_keys = ["${publicKey}"]\n\n` +
        `[docker]\nproject_name = "${project}"\nstop_timeout = 2\n\n` +
        `[health]\ntimeout = 60\nsettle = 3\ncritical = ["web"]\n`,
    );

    say('The box: what does the server offer?');
    nuwax(['--home', home, 'check']);
    if (!withDocker) {
      nuwax(['--home', home, 'upgrade', '--download-only']);
      nuwax(['--home', home, 'status']);
      say(
        'Docker is not reachable here: stopped before the service switch.' +
          ' Install docker.io and docker-compose for the whole flow.',
      );
      return;
    }
    say('First install of 1.0.0 (full package)');
    nuwax(['--home', home, 'upgrade', '--yes']);
    console.log(
      `web serves: ${await fetch(`http://127.0.0.1:${appPort}/index.html`).then((response) => response.text())}`,
    );

    say('Publisher: release 1.0.0.1 as a patch (only what changed) and a full package');
    nuwax([
      'release',
      'pack',
      path.join(versions, '1.0.0.1'),
      '--version',
      '1.0.0.1',
      '--arch',
      arch,
      '-o',
      path.join(site, 'stable', 'app-1.0.0.1.tar.gz'),
    ]);
    nuwax([
      'release',
      'patch',
      path.join(versions, '1.0.0'),
      path.join(versions, '1.0.0.1'),
      '--from',
      '1.0.0',
      '--to',
      '1.0.0.1',
      '--arch',
      arch,
      '-o',
      path.join(site, 'stable', 'patch-1.0.0.1.tar.gz'),
    ]);
    nuwax([
      'release',
      'manifest',
      '--version',
      '1.0.0.1',
      '--notes',
      'Adds a feature file and a migration',
      '-o',
      path.join(site, 'stable', 'manifest.json'),
      path.join(site, 'stable', 'app-1.0.0.1.tar.gz'),
      path.join(site, 'stable', 'patch-1.0.0.1.tar.gz'),
    ]);
    nuwax(['release', 'sign', path.join(site, 'stable', 'manifest.json'), '-k', path.join(work, 'signing.key')]);

    say('What would the upgrade do? `nuwax upgrade --dry-run` changes nothing');
    nuwax(['--home', home, 'upgrade', '--dry-run']);
    say('Upgrade 1.0.0 → 1.0.0.1 (the TUI in a terminal, plain lines otherwise)');
    nuwax(['--home', home, 'upgrade', '--yes']);
    console.log(
      `web serves: ${await fetch(`http://127.0.0.1:${appPort}/index.html`).then((response) => response.text())}`,
    );
    console.log(
      'traffic.sh calls (off before the stop, on once healthy):\n' +
        readFileSync(path.join(home, 'traffic.log'), 'utf8'),
    );
    say('Something is wrong: web was stopped by hand. `nuwax repair failed-startup` brings it back');
    const web = spawnSync(
      'docker',
      [
        'ps',
        '-q',
        '--filter',
        `label=com.docker.compose.project=${project}`,
        '--filter',
        'label=com.docker.compose.service=web',
      ],
      { encoding: 'utf8' },
    ).stdout.trim();
    spawnSync('docker', ['stop', web], { stdio: 'ignore' });
    nuwax(['--home', home, 'repair', 'failed-startup', '--yes']);
    nuwax(['--home', home, 'status']);
    nuwax(['--home', home, 'history']);
    say('Done: the box runs 1.0.0.1; its backups, journal and logs are in the home folder');
  } finally {
    server?.kill('SIGTERM');
    if (withDocker) {
      const ids = spawnSync('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], {
        encoding: 'utf8',
      })
        .stdout.split('\n')
        .filter(Boolean);
      if (ids.length) spawnSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
      removeImages(tags);
    }
    if (process.env.NUWAX_DEMO_KEEP !== '1') rmSync(work, { recursive: true, force: true });
  }
}

await main();
