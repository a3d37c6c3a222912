import { Text } from 'ink';
import type { ProgressEvent } from '../../events/index.js';
import { formatProgress, progressPercent } from '../format.js';

/** `[█████░░░░░] 45% 12.3 MiB/27.0 MiB 5.1 MiB/s ETA 3s`; numbers alone when the total is unknown. */
export function ProgressBar({ progress, width }: { progress: ProgressEvent; width: number }) {
  const percent = progressPercent(progress);
  const numbers = formatProgress(progress);
  if (percent === null) return <Text dimColor>{`    ${numbers}`}</Text>;
  const filled = Math.round((percent / 100) * width);
  return (
    <Text>
      {'    '}
      <Text color="cyan">{'█'.repeat(filled)}</Text>
      <Text dimColor>{'░'.repeat(width - filled)}</Text> {numbers}
    </Text>
  );
}
