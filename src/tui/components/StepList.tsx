import { Box, Text } from 'ink';
import type { ProgressEvent } from '../../events/index.js';
import { cleanText, formatDuration, STEP_LABELS } from '../format.js';
import type { StepRow, StepStatus } from '../view.js';
import { ProgressBar } from './ProgressBar.js';

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const ICONS: Record<Exclude<StepStatus, 'running'>, { icon: string; color?: string }> = {
  pending: { icon: '·' },
  done: { icon: '✔', color: 'green' },
  failed: { icon: '✖', color: 'red' },
  skipped: { icon: '–', color: 'gray' },
};

export interface StepListProps {
  steps: StepRow[];
  progress: ProgressEvent | null;
  /** Animation frame counter; null draws a still ▶ for the running step (tests, screen readers). */
  tick: number | null;
  now: number;
  barWidth: number;
}

/** One row per step: icon, name, duration; the running step carries the progress bar. */
export function StepList({ steps, progress, tick, now, barWidth }: StepListProps) {
  return (
    <Box flexDirection="column">
      {steps.map((row) => (
        <Box key={row.step} flexDirection="column">
          <StepLine row={row} tick={tick} now={now} />
          {row.status === 'running' && progress?.step === row.step ? (
            <ProgressBar progress={progress} width={barWidth} />
          ) : null}
        </Box>
      ))}
    </Box>
  );
}

function StepLine({ row, tick, now }: { row: StepRow; tick: number | null; now: number }) {
  const label = STEP_LABELS[row.step] ?? row.step;
  if (row.status === 'running') {
    const elapsed = tick !== null && row.startedAt !== undefined ? ` ${formatDuration(now - row.startedAt)}` : '';
    return (
      <Text>
        <Text color="cyan">{tick === null ? '▶' : SPINNER[tick % SPINNER.length]}</Text> <Text bold>{label}</Text>
        <Text dimColor>{elapsed}</Text>
      </Text>
    );
  }
  const { icon, color } = ICONS[row.status];
  const detail = row.error ? ` ${row.error.code}: ${row.error.message}` : row.message ? ` ${row.message}` : '';
  return (
    <Text dimColor={row.status === 'pending'}>
      <Text color={color}>{icon}</Text> {label}
      {row.ms !== undefined && row.status !== 'skipped' ? <Text dimColor> {formatDuration(row.ms)}</Text> : null}
      {detail ? <Text color={row.status === 'failed' ? 'red' : 'gray'}>{cleanText(detail)}</Text> : null}
    </Text>
  );
}
