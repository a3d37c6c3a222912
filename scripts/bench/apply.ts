/**
 * The switch's file work (SPEC 8 `applying`, rollback): nuwax applies by renames from staging with
 * a write-ahead undo journal, and undoes by renames. Measured in the same run against what a
 * copying client does: `cp -a staging/. docker/` and `tar -xzf package -C docker`, and, for the
 * undo, restoring docker/ from a tar.gz backup. FILES (default 3000) files of SIZE bytes (16 KiB).
 * cp and tar do not fsync; nuwax fsyncs its journal (per 64 lines) and the folders it changed.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median, reportRow } from './report.js';
import { applyStaged, type PatchOperations, undoApply } from '../../src/apply/index.js';

const FILES = Number(process.env.FILES ?? 3000);
const SIZE = Number(process.env.SIZE ?? 16 * 1024);
const RUNS = Number(process.env.RUNS ?? 3);
const work = mkdtempSync(path.join(os.tmpdir(), 'nuwax-bench-apply-'));
const relatives = Array.from({ length: FILES }, (_, index) => `app/part${index % 60}/file${index}.bin`);

function writeTree(root: string): void {
  for (const relative of relatives) {
    const file = path.join(root, relative);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, randomBytes(SIZE));
  }
  writeFileSync(path.join(root, 'docker-compose.yml'), 'services: {}\n');
}

function shell(command: string, args: string[]): void {
  const result = spawnSync(command, args, { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}`);
}

async function timed(run: () => unknown): Promise<number> {
  const started = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const template = { old: path.join(work, 'template-old'), next: path.join(work, 'template-new') };
const dockerDir = path.join(work, 'home', 'docker');
const stagedRoot = path.join(work, 'home', 'cache', 'staging');
const undoDir = path.join(work, 'home', 'cache', 'undo');
const packageFile = path.join(work, 'package.tar.gz');
const backupFile = path.join(work, 'backup.tar.gz');

/** A fresh box and staging folder, by hardlink-free copies (not timed). */
function reset(): void {
  rmSync(path.join(work, 'home'), { recursive: true, force: true });
  mkdirSync(path.dirname(stagedRoot), { recursive: true });
  shell('cp', ['-a', template.old, dockerDir]);
  shell('cp', ['-a', template.next, stagedRoot]);
  // Flush the setup's writes so that they are not charged to whichever step fsyncs first.
  shell('sync', []);
}

try {
  writeTree(template.old);
  writeTree(template.next);
  shell('tar', ['-czf', packageFile, '-C', template.next, '.']);
  shell('tar', ['-czf', backupFile, '-C', template.old, '.']);
  const patch: PatchOperations = {
    replace: { files: relatives, directories: [] },
    delete: { files: [], directories: [] },
  };
  const results: Record<string, number[]> = { fullApply: [], patchApply: [], undo: [], cp: [], tar: [], restore: [] };
  for (let run = 0; run < RUNS; run += 1) {
    reset();
    results.fullApply!.push(
      await timed(() => applyStaged({ dockerDir, stagedRoot, undoDir, plan: { kind: 'full', protectedPaths: [] } })),
    );
    reset();
    results.patchApply!.push(
      await timed(() =>
        applyStaged({ dockerDir, stagedRoot, undoDir, plan: { kind: 'patch', operations: patch, protectedPaths: [] } }),
      ),
    );
    results.undo!.push(await timed(() => undoApply(undoDir)));
    reset();
    results.cp!.push(await timed(() => shell('cp', ['-a', `${stagedRoot}/.`, dockerDir])));
    reset();
    results.tar!.push(await timed(() => shell('tar', ['-xzf', packageFile, '-C', dockerDir])));
    results.restore!.push(
      await timed(() => {
        rmSync(dockerDir, { recursive: true, force: true });
        mkdirSync(dockerDir);
        shell('tar', ['-xzf', backupFile, '-C', dockerDir]);
      }),
    );
  }
  const [full, patched, undo, cp, tar, restore] = ['fullApply', 'patchApply', 'undo', 'cp', 'tar', 'restore'].map(
    (name) => median(results[name]!),
  ) as [number, number, number, number, number, number];
  const megabytes = ((FILES * SIZE) / 1024 / 1024).toFixed(0);
  console.log(`${FILES} files, ${megabytes} MiB, median of ${RUNS} runs`);
  console.log(`cp -a staging/. docker/              ${cp.toFixed(0).padStart(6)} ms`);
  console.log(`tar -xzf package -C docker           ${tar.toFixed(0).padStart(6)} ms`);
  const speedup = (standard: number, ours: number) => `${(standard / ours).toFixed(2)}x`;
  console.log(
    `nuwax full apply (renames, journal)  ${full.toFixed(0).padStart(6)} ms` +
      `  (speed-up: ${speedup(cp, full)} over cp -a, ${speedup(tar, full)} over tar -x)`,
  );
  console.log(
    `nuwax patch apply, every file        ${patched.toFixed(0).padStart(6)} ms` +
      `  (speed-up: ${speedup(cp, patched)} over cp -a, ${speedup(tar, patched)} over tar -x)`,
  );
  console.log(`restore docker/ from a tar.gz backup ${restore.toFixed(0).padStart(6)} ms`);
  console.log(
    `nuwax undo of that patch (renames)   ${undo.toFixed(0).padStart(6)} ms` +
      `  (speed-up: ${speedup(restore, undo)} over the restore)`,
  );
  reportRow({
    what: `apply a release of ${FILES} files (${(SIZE / 1024).toFixed(0)} KiB each)`,
    standard: `\`cp -a staging/. docker/\` ${cp.toFixed(0)} ms`,
    nuwax:
      `${full.toFixed(0)} ms (renames, fsynced undo journal); a patch replacing every file ${patched.toFixed(0)} ms; ` +
      `its undo ${undo.toFixed(0)} ms against a tar.gz restore ${restore.toFixed(0)} ms`,
    goal: 'faster than cp -a',
    met: full < cp,
    runs: results.fullApply!.map((ms, index) => `${ms.toFixed(0)} ms vs cp ${results.cp![index]!.toFixed(0)} ms`),
  });
} finally {
  rmSync(work, { recursive: true, force: true });
}
