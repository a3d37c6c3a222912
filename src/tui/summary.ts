/**
 * What a result means for a person (SPEC 8 results): one description that the TUI's result
 * box and the plain renderer both print, so they never disagree.
 */
import type { PlanEvent, UpgradeResult } from '../events/index.js';
import { cleanText, firstLines, formatBytes, formatDuration } from './format.js';

export type Tone = 'success' | 'warning' | 'error';

export interface ResultSummary {
  status: string;
  tone: Tone;
  title: string;
  facts: Array<{ label: string; value: string }>;
  lists: Array<{ label: string; items: string[]; numbered: boolean }>;
}

export interface DescribeOptions {
  /** `->` for plain text (the default), `→` in the TUI. */
  arrow?: string;
}

/** Any result object, as carried by a `ResultEvent`, as the typed SPEC 8 union. */
export function asUpgradeResult(result: Record<string, unknown> & { status: string }): UpgradeResult {
  return result as unknown as UpgradeResult;
}

export function describeResult(result: UpgradeResult, options: DescribeOptions = {}): ResultSummary {
  const arrow = options.arrow ?? '->';
  const versions = (from: string | null, to: string) => `${from ?? 'none'} ${arrow} ${to}`;
  const backup = (id: number | null) => (id === null ? 'none' : `#${id}`);
  switch (result.status) {
    case 'success': {
      const facts = [
        { label: 'versions', value: versions(result.from, result.version) },
        { label: 'strategy', value: result.strategy },
        { label: 'downtime', value: formatDuration(result.downtime_ms) },
        { label: 'backup', value: backup(result.backup_id) },
      ];
      if (result.executed_scripts.length > 0)
        facts.push({ label: 'migrations', value: result.executed_scripts.join(', ') });
      if (result.fallback_reason) facts.push({ label: 'note', value: result.fallback_reason });
      return summary(result.status, 'success', `Upgraded to ${result.version}`, facts);
    }
    case 'up_to_date':
      return summary(result.status, 'success', `Up to date: ${result.version ?? 'nothing installed'}`, [
        { label: 'offered', value: result.offered },
        { label: 'reason', value: result.reason },
      ]);
    case 'staged':
      return summary(result.status, 'success', `Staged ${result.version}: ready to switch`, [
        { label: 'strategy', value: result.strategy },
        { label: 'package', value: result.package },
        { label: 'next', value: 'run `nuwax upgrade` to switch (the daemon does it in its window)' },
      ]);
    case 'partial_success':
      return summary(
        result.status,
        'warning',
        `Upgraded to ${result.version}, but some services are not healthy`,
        [
          { label: 'versions', value: versions(result.from, result.version) },
          { label: 'unhealthy', value: `${result.unhealthy_services.join(', ') || 'none'} (${result.severity})` },
          { label: 'healthy', value: result.healthy_services.join(', ') || 'none' },
          { label: 'downtime', value: formatDuration(result.downtime_ms) },
          { label: 'backup', value: backup(result.backup_id) },
        ],
        [{ label: 'recommendations', items: [result.recommendation], numbered: false }],
      );
    case 'failed':
      return describeFailure(result, backup);
    default:
      return summary(
        String((result as { status: unknown }).status),
        'warning',
        `Finished: ${String((result as { status: unknown }).status)}`,
        [],
      );
  }
}

type Failed = Extract<UpgradeResult, { status: 'failed' }>;

function describeFailure(result: Failed, backup: (id: number | null) => string): ResultSummary {
  const error = { label: 'error', value: `${result.error.code}: ${result.error.message}` };
  if ('changed' in result) {
    const title =
      result.error.code === 'E_CANCELLED' || result.error.code === 'E_ABORTED'
        ? 'Cancelled: nothing was changed'
        : `Failed at ${result.step}: nothing was changed`;
    return summary(result.status, 'error', title, [error]);
  }
  const title = result.recovered
    ? `Failed at ${result.step}; rolled back to ${result.previous_version ?? 'the previous state'}`
    : `Failed at ${result.step}; the rollback did NOT complete`;
  const facts = [
    error,
    { label: 'cause', value: result.diagnosis.cause },
    { label: 'backup', value: backup(result.backup_id) },
  ];
  if (result.bundle) facts.push({ label: 'failure bundle', value: result.bundle });
  const lists = [{ label: 'recommendations', items: result.diagnosis.recommendations, numbered: false }];
  if (result.manual_steps && result.manual_steps.length > 0)
    lists.push({ label: 'manual steps', items: result.manual_steps, numbered: true });
  return summary(result.status, 'error', title, facts, lists);
}

function summary(
  status: string,
  tone: Tone,
  title: string,
  facts: ResultSummary['facts'],
  lists: ResultSummary['lists'] = [],
): ResultSummary {
  return {
    status,
    tone,
    title: cleanText(title),
    facts: facts.map((fact) => ({ label: fact.label, value: cleanText(fact.value) })),
    lists: lists
      .filter((list) => list.items.length > 0)
      .map((list) => ({ ...list, items: list.items.map((item) => cleanText(item)) })),
  };
}

/** What a Ctrl-C ended up doing, said once the result is in (cancel safely). */
export function describeCancel(result: UpgradeResult): string {
  switch (result.status) {
    case 'failed':
      if ('changed' in result) return 'Cancelled: nothing was changed; a partial download is kept for a resume.';
      return result.recovered
        ? `Cancelled: the switch was rolled back to ${result.previous_version ?? 'the previous state'}.`
        : 'Cancelled, but the rollback did not complete: see the manual steps below.';
    case 'success':
    case 'partial_success':
      return `The switch had already started, so it was finished: now on ${result.version}.`;
    default:
      return 'Ctrl-C came after the work was done: nothing to cancel.';
  }
}

/** The lines that introduce an upgrade: `1.4.0.1 -> 1.4.0.2 (patch, download 27.0 MiB)` and the first notes. */
export function describePlan(
  plan: PlanEvent,
  options: DescribeOptions & { noteLines?: number } = {},
): { title: string; detail: string; notes: string[] } {
  const arrow = options.arrow ?? '->';
  const title = cleanText(`${plan.from ?? 'none'} ${arrow} ${plan.to}`);
  const detail = [
    plan.strategy,
    plan.size !== null ? `download ${formatBytes(plan.size)}${savedAgainst(plan)}` : null,
    plan.downloadOnly ? 'download only' : null,
  ]
    .filter((part): part is string => part !== null)
    .join(', ');
  return { title, detail, notes: firstLines(plan.notes, options.noteLines ?? 3) };
}

/** A patch against the full package it spares (thin images make it a fraction of it). */
function savedAgainst(plan: PlanEvent): string {
  return plan.strategy === 'patch' && plan.fullSize ? ` instead of ${formatBytes(plan.fullSize)}` : '';
}
