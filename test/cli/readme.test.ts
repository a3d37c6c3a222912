import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/index.js';
import { CLI_PATH, type CliRun, runCli, withTempDir } from '../helpers/cli.js';
import { dockerSuite, removeProject, uniqueName } from '../helpers/docker.js';
import { ReleaseServer } from '../helpers/release-server.js';

/**
 * Every ```sh example of the README runs here, read from README.md itself, so the documentation
 * cannot drift from the product. Each line runs with bash in a fresh workspace (see `workspace`)
 * with `nuwax` on PATH and must exit 0. A line that cannot run on a test machine is skipped only
 * when its command is in SKIPPED, with the reason; a new README section must run against the
 * workspace or extend it, not be left out.
 */
const README = fileURLToPath(new URL('../../../README.md', import.meta.url));
const ARCH = process.arch === 'arm64' ? 'aarch64' : 'x86_64';

const SKIPPED: Array<{ command: RegExp; reason: string }> = [
  {
    command: /^npm ci\b/,
    reason: 'reinstalls node_modules from the registry; the suite runs inside an installed tree',
  },
  { command: /^npm test\b/, reason: 'the test suite itself' },
  {
    command: /^npm run build && npm link\b/,
    reason: 'rebuilds dist/ under the running tests, and npm link installs into the global prefix',
  },
  { command: /^sudo\b/, reason: 'needs root and changes the system (/opt, /etc/systemd)' },
  { command: /^(systemctl|journalctl)\b/, reason: 'needs systemd running the nuwax unit' },
  { command: /^(apt|apt-get)\b/, reason: 'installs system packages' },
];

/** In the README's paths, what they are in the workspace. */
const SUBSTITUTIONS = (home: string): Array<[string, string]> => [['/opt/nuwax', home]];

interface Example {
  section: string;
  line: string;
}

/** The ```sh blocks, one entry per command line (a trailing `\` joins lines), with their section. */
export function shellExamples(markdown: string): Example[] {
  const examples: Example[] = [];
  let section = '(top)';
  let inBlock = false;
  let pending = '';
  for (const raw of markdown.split('\n')) {
    if (!inBlock && /^#{1,6} /.test(raw)) section = raw.replace(/^#+ /, '');
    if (/^```/.test(raw)) {
      if (inBlock) inBlock = false;
      else inBlock = /^```(sh|bash|shell)\s*$/.test(raw);
      continue;
    }
    if (!inBlock) continue;
    const text = pending + raw;
    if (text.endsWith('\\')) {
      pending = `${text.slice(0, -1)} `;
      continue;
    }
    pending = '';
    const command = text.replace(/(^|\s)#.*$/, '').trim();
    if (command !== '') examples.push({ section, line: text.trim() });
  }
  return examples;
}

const DEMO = fileURLToPath(new URL('../../scripts/demo.js', import.meta.url));

/**
 * What a line runs here: `npm ci` already ran (the suite runs in an installed tree), and `npm run
 * demo` is its compiled script, as `npm test` has just built it (a rebuild would pull dist/ from
 * under the tests running beside this one).
 */
export function runnableLine(line: string): string {
  return line.replace(/^npm ci && /, '').replace(/^npm run demo\b/, `node ${DEMO}`);
}

function skipReason(line: string): string | undefined {
  const command = line.replace(/(^|\s)#.*$/, '').trim();
  return SKIPPED.find((entry) => entry.command.test(command))?.reason;
}

const server = new ReleaseServer();
const suite = await dockerSuite();
before(() => server.start());
after(() => server.stop());

async function ok(args: string[]): Promise<CliRun> {
  const run = await runCli(args);
  assert.equal(run.code, 0, `nuwax ${args.join(' ')}: ${run.stdout}${run.stderr}`);
  return run;
}

let released: { releases: string; publicKey: string } | undefined;

/**
 * A signed release 1.4.0.2 (full and patch from 1.4.0.1) published once into `dir/releases/1.4.0.2`
 * and served on 127.0.0.1, as a release server holds it.
 */
async function publishOnce(dir: string): Promise<{ releases: string; publicKey: string }> {
  if (released) return released;
  const releases = path.join(dir, 'releases', '1.4.0.2');
  await mkdir(releases, { recursive: true });
  await writeDeployment(path.join(dir, 'v1.4.0.1'), 'A');
  await writeDeployment(path.join(dir, 'v1.4.0.2'), 'B');
  const at = (name: string) => path.join(releases, name);
  await ok(['release', 'keygen', '-o', path.join(dir, 'signing')]);
  await ok([
    'release',
    'pack',
    path.join(dir, 'v1.4.0.2'),
    '--version',
    '1.4.0.2',
    '--arch',
    ARCH,
    '-o',
    at('full.tar.gz'),
  ]);
  await ok([
    'release',
    'patch',
    path.join(dir, 'v1.4.0.1'),
    path.join(dir, 'v1.4.0.2'),
    '--from',
    '1.4.0.1',
    '--to',
    '1.4.0.2',
    '--arch',
    ARCH,
    '-o',
    at('patch.tar.gz'),
  ]);
  await ok([
    'release',
    'manifest',
    '--version',
    '1.4.0.2',
    '-o',
    at('manifest.json'),
    at('full.tar.gz'),
    at('patch.tar.gz'),
  ]);
  await ok(['release', 'sign', at('manifest.json'), '-k', path.join(dir, 'signing.key')]);
  for (const name of ['manifest.json', 'manifest.json.sig', 'full.tar.gz', 'patch.tar.gz'])
    server.set(`/stable/${name}`, await readFile(at(name)));
  released = { releases, publicKey: (await readFile(path.join(dir, 'signing.pub'), 'utf8')).trim() };
  return released;
}

/** A deployment folder with an empty compose project: upgrades run through compose without images. */
async function writeDeployment(dir: string, page: string): Promise<void> {
  await mkdir(path.join(dir, 'web'), { recursive: true });
  await writeFile(path.join(dir, 'docker-compose.yml'), 'version: "2.4"\nservices: {}\n');
  await writeFile(path.join(dir, 'web', 'index.html'), `${page}\n`);
}

/**
 * What the README's examples expect around them: the folders `v1.4.0.1/` and `v1.4.0.2/` of the
 * publishing example, a published `releases/1.4.0.2/`, and a box (the home, also `/opt/nuwax`) at
 * 1.4.0.1 whose config.toml points at the release served on 127.0.0.1 with its public key.
 */
async function workspace(dir: string, shared: string): Promise<{ home: string; bin: string; project: string }> {
  const { releases, publicKey } = await publishOnce(shared);
  await cp(path.join(shared, 'v1.4.0.1'), path.join(dir, 'v1.4.0.1'), { recursive: true });
  await cp(path.join(shared, 'v1.4.0.2'), path.join(dir, 'v1.4.0.2'), { recursive: true });
  await cp(releases, path.join(dir, 'releases', '1.4.0.2'), { recursive: true });
  const home = path.join(dir, 'box');
  const project = uniqueName('readme');
  await cp(path.join(shared, 'v1.4.0.1'), path.join(home, 'docker'), { recursive: true });
  await writeFile(
    path.join(home, 'config.toml'),
    `[versions]\ndocker_service = "1.4.0.1"\n\n[docker]\nproject_name = "${project}"\n\n` +
      `[server]\nmanifest_url = "${server.url}/stable/manifest.json"\n\n` +
      `[security]\npublic_keys = ["${publicKey}"]\n\n[health]\ntimeout = "60s"\nsettle = "1s"\n`,
  );
  // Stand-ins for the client archives `npm run package` builds (minutes, and tested on their own
  // in test/selfupdate): the publishing example only signs and lists them.
  for (const arch of ['x86_64', 'aarch64']) await writeFile(path.join(dir, `nuwax-0.2.0-linux-${arch}.tar.gz`), arch);
  const bin = path.join(dir, 'bin');
  await mkdir(bin);
  await writeFile(path.join(bin, 'nuwax'), `#!/bin/sh\nexec "${process.execPath}" "${CLI_PATH}" "$@"\n`);
  await chmod(path.join(bin, 'nuwax'), 0o755);
  return { home, bin, project };
}

function bash(line: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((resolve) =>
    execFile(
      'bash',
      ['-o', 'pipefail', '-c', line],
      { cwd, env, timeout: 180_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: stdout + stderr }),
    ),
  );
}

const examples = shellExamples(await readFile(README, 'utf8'));
const sections = [...new Set(examples.map((example) => example.section))];

describe('the README shell examples run as written', { ...suite, concurrency: false }, () => {
  let shared = '';
  before(async () => {
    shared = await mkdtemp(path.join(os.tmpdir(), 'nuwax-readme-'));
  });
  after(() => rm(shared, { recursive: true, force: true }));

  test('the README has shell examples, and every skipped line has its reason', () => {
    assert.ok(examples.length >= 10, `only ${examples.length} examples found`);
    for (const example of examples) {
      const reason = skipReason(example.line);
      if (reason) assert.ok(reason.length > 10, example.line);
    }
    // The skip list stays a short list of system commands, not a way out for nuwax's own examples.
    for (const example of examples)
      if (/^nuwax\b/.test(example.line)) assert.equal(skipReason(example.line), undefined, example.line);
  });

  for (const section of sections) {
    test(`section "${section}": each line exits 0`, (t) =>
      withTempDir('readme', async (dir) => {
        const { home, bin, project } = await workspace(dir, shared);
        const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, NUWAX_HOME: home };
        t.after(() => removeProject(project));
        for (const example of examples.filter((item) => item.section === section)) {
          let line = runnableLine(example.line);
          const reason = skipReason(line);
          if (reason) {
            t.diagnostic(`skipped (${reason}): ${example.line}`);
            continue;
          }
          for (const [from, to] of SUBSTITUTIONS(home)) line = line.split(from).join(to);
          const run = await bash(line, dir, env);
          assert.equal(run.code, 0, `${example.line}\n${run.output}`);
        }
      }));
  }
});

describe('the README configuration example', () => {
  test('the ```toml block loads as a config.toml', async () => {
    const markdown = await readFile(README, 'utf8');
    const blocks = [...markdown.matchAll(/^```toml\n([\s\S]*?)^```/gm)].map((match) => match[1]!);
    assert.ok(blocks.length >= 1);
    for (const block of blocks) assert.doesNotThrow(() => parseConfig(block, 'README.md'));
  });

  test('the quick start runs the demo, not a reinstall', () => {
    assert.equal(runnableLine('npm ci && npm run demo     # note'), `node ${DEMO}     # note`);
    assert.equal(skipReason(runnableLine('npm ci && npm run demo')), undefined);
  });

  test('the example parser joins continued lines and keeps the section', () => {
    const parsed = shellExamples(
      '## A\n```sh\nnuwax a \\\n  --json   # note\n# only a comment\n```\n```text\nnuwax no\n```\n',
    );
    assert.deepEqual(parsed, [{ section: 'A', line: 'nuwax a    --json   # note' }]);
  });
});
