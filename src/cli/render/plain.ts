/**
 * `nuwax upgrade` without a terminal (SPEC 11): plain lines for logs, cron mails and journald.
 * Never an ANSI code: every text from outside goes through cleanText.
 */
import type { StepEvent, UpgradeListener } from '../../events/index.js';
import {
  asUpgradeResult,
  cleanText,
  describePlan,
  describeResult,
  formatDuration,
  formatProgress,
  type ResultSummary,
} from '../../tui/index.js';
import { createStepThrottle } from './throttle.js';

export interface PlainRendererOptions {
  /** At most one progress line per step in this time (default 2 s). */
  progressIntervalMs?: number;
  now?: () => number;
}

export function createPlainRenderer(
  write: (line: string) => void,
  options: PlainRendererOptions = {},
): UpgradeListener {
  const throttle = createStepThrottle(options.progressIntervalMs ?? 2000, options.now ?? Date.now);
  return (event) => {
    switch (event.type) {
      case 'plan': {
        const plan = describePlan(event, { noteLines: 3 });
        write(`${event.downloadOnly ? 'pre-stage' : 'upgrade'} ${plan.title} (${plan.detail})`);
        for (const line of plan.notes) write(`  notes: ${line}`);
        return;
      }
      case 'step':
        if (event.status === 'running') throttle.reset(event.step);
        write(stepLine(event));
        return;
      case 'progress':
        if (throttle.allow(event.step)) write(`${event.step} ${formatProgress(event)}`);
        return;
      case 'log':
        write(`${event.level}: ${event.step ? `[${event.step}] ` : ''}${cleanText(event.message)}`);
        return;
      case 'result':
        for (const line of summaryLines(describeResult(asUpgradeResult(event.result)))) write(line);
        return;
    }
  };
}

function stepLine(event: StepEvent): string {
  const took = event.ms !== undefined ? ` in ${formatDuration(event.ms)}` : '';
  switch (event.status) {
    case 'running':
      return `step ${event.step} started`;
    case 'done':
      return `step ${event.step} done${took}${event.message ? `: ${cleanText(event.message)}` : ''}`;
    case 'skipped':
      return `step ${event.step} skipped${event.message ? `: ${cleanText(event.message)}` : ''}`;
    case 'failed': {
      const error = event.error
        ? `: ${event.error.code}: ${cleanText(event.error.message)}`
        : event.message
          ? `: ${cleanText(event.message)}`
          : '';
      return `step ${event.step} FAILED${event.ms !== undefined ? ` after ${formatDuration(event.ms)}` : ''}${error}`;
    }
  }
}

/** `result: success - Upgraded to 1.4.0.2`, then one `  label: value` per fact and the lists. */
export function summaryLines(summary: ResultSummary): string[] {
  const lines = [`result: ${summary.status} - ${summary.title}`];
  for (const fact of summary.facts) lines.push(`  ${fact.label}: ${fact.value}`);
  for (const list of summary.lists) {
    lines.push(`  ${list.label}:`);
    lines.push(...list.items.map((item, index) => `    ${list.numbered ? `${index + 1}.` : '-'} ${item}`));
  }
  return lines;
}
