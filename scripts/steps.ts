/**
 * `npm run steps`: the upgrade's plan, printed from the step table without running anything
 * (the table ARCHITECTURE.md points to; what `upgrade --dry-run` will print).
 */
import { listSteps } from '../src/upgrade/index.js';

const rows = listSteps();
process.stdout.write('| # | step | phase | services down | no return | what it does |\n|---|---|---|---|---|---|\n');
rows.forEach((step, index) => {
  process.stdout.write(
    `| ${index + 1} | \`${step.name}\` | ${step.phase} | ${step.downtime ? 'yes' : ''} | ` +
      `${step.noReturn ? 'yes' : ''} | ${step.summary} |\n`,
  );
});
process.stdout.write('| | `rolling_back` | on failure | | | the undo of each step that began, newest first |\n');
