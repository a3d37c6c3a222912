/**
 * Child process for the kill -9 tests: runs an apply (or an undo) and SIGKILLs itself at a chosen
 * step, or runs slowly so that the parent can kill it at an arbitrary instant.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type ApplyPlan, applyStaged, undoApply } from '../../src/apply/index.js';

interface Job {
  mode: 'apply' | 'undo';
  dockerDir: string;
  stagedRoot: string;
  undoDir: string;
  plan: ApplyPlan;
  killAt?: { seq: number; phase: 'journaled' | 'done' };
  slowMs?: number;
}

const job = JSON.parse(process.argv[2]!) as Job;
const kill = (): void => {
  process.kill(process.pid, 'SIGKILL');
};

if (job.mode === 'apply') {
  await applyStaged({
    dockerDir: job.dockerDir,
    stagedRoot: job.stagedRoot,
    undoDir: job.undoDir,
    plan: job.plan,
    onStep: async (step, phase) => {
      if (job.killAt && job.killAt.seq === step.seq && job.killAt.phase === phase) kill();
      if (job.slowMs) await sleep(job.slowMs);
    },
  });
} else {
  await undoApply(job.undoDir, job.dockerDir, {
    onReverse: (step) => {
      if (job.killAt && job.killAt.seq === step.seq) kill();
    },
  });
}
process.stdout.write('finished\n');
