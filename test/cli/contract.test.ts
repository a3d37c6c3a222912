import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ReleaseServer } from '../helpers/release-server.js';
import { CLI_PATH, type CliRun, runCli, withTempDir } from '../helpers/cli.js';

/**
 * SPEC 11's command line as a user types it: the global options before or after the command, every
 * command's --json, read-only commands on a wrong home, and what a person sees on stderr.
 */
const ARCH = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const server = new ReleaseServer();
before(() => server.start());
after(() => server.stop());

async function ok(args: string[], env?: NodeJS.ProcessEnv): Promise<CliRun> {
  const run = await runCli(args, env ? { env } : {});
  assert.equal(run.code, 0, `nuwax ${args.join(' ')}: ${run.stdout}${run.stderr}`);
  return run;
}

/** Every stdout line of a --json run is a JSON value; returns the last. */
function jsonOf(run: CliRun, what: string): Record<string, unknown> {
  assert.notEqual(run.stdout.trim(), '', `${what}: nothing on stdout (${run.stderr})`);
  for (const line of run.stdout.trim().split('\n'))
    assert.doesNotThrow(() => JSON.parse(line), `${what}: not JSON: ${line}`);
  return run.json();
}

/** A box at 1.0.0 and a signed release 1.1.0 (full and patch) served on 127.0.0.1; the options after the command. */
async function publishedBox(directory: string): Promise<{ home: string; work: string }> {
  const work = path.join(directory, 'work');
  const home = path.join(directory, 'home');
  for (const [dir, page] of [
    ['v1.0.0', 'A'],
    ['v1.1.0', 'B'],
  ] as const) {
    await mkdir(path.join(work, dir, 'web'), { recursive: true });
    await writeFile(path.join(work, dir, 'docker-compose.yml'), 'services: {}\n');
    await writeFile(path.join(work, dir, 'web', 'index.html'), `${page}\n`);
  }
  const at = (name: string) => path.join(work, name);
  const keygen = jsonOf(await ok(['release', 'keygen', '-o', at('signing'), '--json']), 'release keygen');
  assert.ok(keygen, 'keygen');
  const pack = jsonOf(
    await ok([
      'release',
      'pack',
      at('v1.1.0'),
      '--version',
      '1.1.0',
      '--arch',
      ARCH,
      '-o',
      at('full.tar.gz'),
      '--json',
    ]),
    'release pack',
  );
  assert.equal(pack.version, '1.1.0', 'release pack --version is the release version, not nuwax --version');
  jsonOf(
    await ok([
      'release',
      'patch',
      at('v1.0.0'),
      at('v1.1.0'),
      '--from',
      '1.0.0',
      '--to',
      '1.1.0',
      '--arch',
      ARCH,
      '-o',
      at('patch.tar.gz'),
      '--json',
    ]),
    'release patch',
  );
  const manifest = jsonOf(
    await ok([
      'release',
      'manifest',
      '--json',
      '--version',
      '1.1.0',
      '-o',
      at('manifest.json'),
      at('full.tar.gz'),
      at('patch.tar.gz'),
    ]),
    'release manifest',
  );
  assert.ok(manifest);
  jsonOf(await ok(['release', 'sign', at('manifest.json'), '-k', at('signing.key'), '--json']), 'release sign');
  jsonOf(await ok(['release', 'bundle', '--manifest', work, '-o', at('bundle.tar'), '--json']), 'release bundle');
  for (const name of ['manifest.json', 'manifest.json.sig', 'full.tar.gz', 'patch.tar.gz'])
    server.set(`/${name}`, await readFile(at(name)));
  const publicKey = (await readFile(at('signing.pub'), 'utf8')).trim();
  await mkdir(path.join(home, 'docker', 'web'), { recursive: true });
  await writeFile(path.join(home, 'docker', 'docker-compose.yml'), 'services: {}\n');
  await writeFile(path.join(home, 'docker', 'web', 'index.html'), 'A\n');
  await writeFile(
    path.join(home, 'config.toml'),
    `[versions]\ndocker_service = "1.0.0"\n\n[server]\nmanifest_url = "${server.url}/manifest.json"\n\n` +
      `[security]\npublic_keys = ["${publicKey}"]\n\n[schedule]\nauto_apply = false\n\n[download]\nretries = 0\n`,
  );
  return { home, work };
}

describe('global options before or after the command (SPEC 11)', () => {
  test('every command takes --json after its name and prints JSON (release, check, status, history, upgrade, daemon, import, backup, doctor, rollback, serve)', () =>
    withTempDir('contract', async (directory) => {
      const { home, work } = await publishedBox(directory);
      const check = jsonOf(await ok(['check', '--json', '--home', home]), 'check');
      assert.deepEqual([check.current, check.strategy], ['1.0.0', 'patch']);
      const status = jsonOf(await ok(['status', '--home', home, '--json']), 'status');
      assert.equal(status.version, '1.0.0');
      assert.ok(Array.isArray(jsonOf(await ok(['history', '--json', '--home', home]), 'history')));
      const staged = jsonOf(await ok(['daemon', '--once', '--json', '--home', home]), 'daemon --once');
      assert.equal(staged.status, 'staged');
      const imported = await runCli(['import', path.join(work, 'bundle.tar'), '--yes', '--json', '--home', home]);
      assert.notEqual(imported.code, 2, imported.stderr);
      jsonOf(imported, 'import');
      const upgrade = await runCli(['upgrade', '--download-only', '--json', '--home', home]);
      assert.equal(upgrade.code, 0, upgrade.stdout + upgrade.stderr);
      assert.equal(jsonOf(upgrade, 'upgrade').status, 'staged');
      const backup = jsonOf(await ok(['backup', 'create', '--json', '--home', home]), 'backup create');
      assert.equal(typeof backup.id, 'number');
      const id = String(backup.id);
      assert.equal(
        (jsonOf(await ok(['backup', 'list', '--json', '--home', home]), 'backup list') as unknown as []).length,
        1,
      );
      jsonOf(await ok(['backup', 'verify', id, '--json', '--home', home]), 'backup verify');
      jsonOf(await ok(['backup', 'restore', id, '--yes', '--json', '--home', home]), 'backup restore');
      jsonOf(await ok(['backup', 'prune', '--json', '--home', home]), 'backup prune');
      const doctor = await runCli(['doctor', '--json', '--home', home], { env: { PATH: path.join(home, 'none') } });
      assert.equal(jsonOf(doctor, 'doctor').verdict, 'NOT_READY', 'no Docker on this PATH');
      const rollback = await runCli(['rollback', id, '--yes', '--json', '--home', home], {
        env: { PATH: path.join(home, 'none') },
      });
      assert.notEqual(rollback.code, 2, rollback.stderr);
      jsonOf(rollback, 'rollback');
      const served = await firstLine(['serve', work, '--port', '0', '--json']);
      assert.match(String(JSON.parse(served).url), /^http:\/\/127\.0\.0\.1:\d+/);
    }));

  test('--home, --config, --json and --log-level are accepted before the command, after it, or split', () =>
    withTempDir('contract', async (directory) => {
      const home = path.join(directory, 'app');
      await mkdir(home);
      await writeFile(path.join(home, 'config.toml'), '[versions]\ndocker_service = "1.2.3"\n');
      const other = path.join(directory, 'other.toml');
      await writeFile(other, '[versions]\ndocker_service = "2.0.0"\n');
      const env = { PATH: path.join(directory, 'none') };
      for (const args of [
        ['--home', home, '--json', 'status'],
        ['status', '--home', home, '--json'],
        ['--json', 'status', '--home', home],
        ['--home', home, 'status', '--json', '--log-level', 'error'],
      ]) {
        const run = await ok(args, env);
        assert.equal(jsonOf(run, args.join(' ')).version, '1.2.3', args.join(' '));
      }
      const configured = await ok(['status', '--home', home, '--config', other, '--json'], env);
      assert.equal(configured.json().version, '2.0.0');
      // The one after the command is nearest and wins.
      const nearest = await ok(['--home', path.join(directory, 'nowhere'), 'status', '--home', home, '--json'], env);
      assert.equal(nearest.json().version, '1.2.3');
      const version = await ok(['--version']);
      assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+/);
      const bad = await runCli(['status', '--log-level', 'loud', '--home', home]);
      assert.equal(bad.code, 2, 'an invalid choice is still a usage error');
    }));

  test('the README pipeline `nuwax upgrade --json | tail -1` prints the result', () =>
    withTempDir('contract', async (directory) => {
      const { home } = await publishedBox(directory);
      const line = await new Promise<string>((resolve, reject) =>
        execFile(
          'sh',
          ['-c', `"${process.execPath}" "${CLI_PATH}" upgrade --download-only --json | tail -1`],
          { env: { ...process.env, NUWAX_HOME: home } },
          (error, stdout) => (error ? reject(error) : resolve(stdout)),
        ),
      );
      assert.equal((JSON.parse(line) as { status: string }).status, 'staged');
    }));
});

/** Runs a long-lived command (serve) until its first stdout line, then stops it. */
function firstLine(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) {
        child.kill('SIGTERM');
        resolve(out.split('\n')[0]!);
      }
    });
    child.on('exit', (code) => {
      if (!out.includes('\n')) reject(new Error(`exited ${code} before a line: ${err}`));
    });
  });
}

describe('read-only commands on a wrong home', () => {
  const commands = [['status'], ['check'], ['history'], ['doctor'], ['backup', 'list']];

  test('a home that does not exist: E_CONFIG naming the home and the config path, exit 1, nothing created', () =>
    withTempDir('contract', async (directory) => {
      const home = path.join(directory, 'nonexistent');
      for (const command of commands) {
        const run = await runCli(['--home', home, ...command]);
        assert.equal(run.code, 1, `${command.join(' ')}: ${run.stdout}`);
        assert.equal(run.stdout, '');
        assert.equal(
          run.stderr,
          `nuwax: E_CONFIG: The home ${home} does not exist (looked for ${path.join(home, 'config.toml')}) ` +
            '(the home is --home, else $NUWAX_HOME, else the current directory)\n',
        );
        const json = await runCli([...command, '--home', home, '--json']);
        assert.equal((json.json().error as { code: string }).code, 'E_CONFIG');
        assert.deepEqual(await readdir(directory), [], `${command.join(' ')} created nothing`);
      }
    }));

  test('a home without config.toml: E_CONFIG naming the file it looked for, and the home stays empty', () =>
    withTempDir('contract', async (home) => {
      for (const command of commands) {
        const run = await runCli([...command], { env: { NUWAX_HOME: home } });
        assert.equal(run.code, 1, `${command.join(' ')}: ${run.stdout}`);
        assert.match(
          run.stderr,
          new RegExp(
            `^nuwax: E_CONFIG: No config file in the home ${home}: ${path.join(home, 'config.toml')} does not exist`,
          ),
        );
        assert.deepEqual(await readdir(home), [], `${command.join(' ')} created nothing`);
      }
    }));

  test('a misspelt section is an error naming it and the sections that exist; nuwax-cli sections load', () =>
    withTempDir('contract', async (home) => {
      await writeFile(
        path.join(home, 'config.toml'),
        '[versions]\ndocker_service = "1.0.0"\n[sever]\nmanifest_url = "http://x/m.json"\n',
      );
      const run = await runCli(['status', '--home', home]);
      assert.equal(run.code, 1);
      assert.match(
        run.stderr,
        /^nuwax: E_CONFIG: .*config\.toml: unknown section \[sever\]; the sections are .*\[server\]/,
      );
      // nuwax-cli's own template (client-core/templates/config.toml.template), filled in.
      await writeFile(
        path.join(home, 'config.toml'),
        '[versions]\ndocker_service = "0.0.1"\n\n[docker]\ncompose_file = "docker/docker-compose.yml"\n\n' +
          '[backup]\nstorage_dir = "./backups"\n\n[cache]\ncache_dir = "./cacheDuckData"\n' +
          'download_dir = "./cacheDuckData/download"\n\n[updates]\ncheck_frequency = "daily"\n',
      );
      const loaded = await runCli(['status', '--home', home, '--json'], { env: { PATH: path.join(home, 'none') } });
      assert.equal(loaded.code, 0, loaded.stderr);
      assert.equal(loaded.json().version, '0.0.1');
    }));
});

describe('messages for people, logs for machines', () => {
  test('a handled condition is one readable line on stderr: no pino JSON, no stack; --log-level debug shows both', () =>
    withTempDir('contract', async (home) => {
      await writeFile(path.join(home, 'config.toml'), '[versions]\ndocker_service = "1.0.0"\n');
      await writeFile(path.join(home, 'data'), 'a file where the data folder should be');
      const env = { PATH: path.join(home, 'none') };
      const run = await runCli(['doctor', '--home', home], { env });
      assert.equal(run.code, 1);
      assert.equal(
        run.stderr,
        'nuwax: warning: doctor: cannot open the state store; using a temporary one: ' +
          `EEXIST: file already exists, mkdir '${path.join(home, 'data')}'\n`,
      );
      const debug = await runCli(['doctor', '--home', home, '--log-level', 'debug'], { env });
      const record = debug.stderr
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { msg: string; err?: { stack?: string } })
        .find((item) => item.msg.startsWith('doctor: cannot open the state store'));
      assert.match(record?.err?.stack ?? '', /\n\s+at /, 'the stack at debug');
    }));

  test('the daemon: stderr is its log, NDJSON only; progress lines and the result are on stdout, never JSON', () =>
    withTempDir('contract', async (home) => {
      await writeFile(
        path.join(home, 'config.toml'),
        '[versions]\ndocker_service = "1.0.0"\n[server]\nmanifest_url = "http://127.0.0.1:9/manifest.json"\n' +
          'timeout = 2\n[download]\nretries = 0\n',
      );
      const run = await runCli(['daemon', '--once', '--home', home, '--log-level', 'info']);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const records = run.stderr.split('\n').filter(Boolean);
      assert.ok(records.length >= 2, run.stderr);
      for (const line of records) assert.doesNotThrow(() => JSON.parse(line), `not NDJSON: ${line}`);
      assert.match(run.stdout, /^step checking FAILED .*E_NETWORK/m);
      assert.match(run.stdout, /^result: failed/m);
      for (const line of run.stdout.split('\n').filter(Boolean)) assert.doesNotMatch(line, /^\{/);
      // A start-up error of the daemon (the lock taken by a live process) is a record too, not a text line.
      await mkdir(path.join(home, 'data'), { recursive: true });
      await writeFile(
        path.join(home, 'data', 'nuwax.lock'),
        JSON.stringify({ pid: process.pid, command: 'test', started_at: new Date().toISOString() }),
      );
      const locked = await runCli(['daemon', '--once', '--home', home]);
      assert.equal(locked.code, 1);
      const lines = locked.stderr.split('\n').filter(Boolean);
      assert.ok(lines.length >= 1);
      for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not NDJSON: ${line}`);
    }));
});
