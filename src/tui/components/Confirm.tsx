import { Text, useInput } from 'ink';
import { cleanText } from '../format.js';
import type { ConfirmSummary } from '../view.js';

/** "Stop services and switch to X? [y/N]" before the switch (SPEC 11); anything but y is no. */
export function Confirm({ summary, onAnswer }: { summary: ConfirmSummary; onAnswer(yes: boolean): void }) {
  useInput((input, key) => {
    if (key.ctrl) return; // Ctrl-C belongs to the app: it cancels.
    if (input === 'y' || input === 'Y') onAnswer(true);
    else if (input === 'n' || input === 'N' || key.return || key.escape) onAnswer(false);
  });
  return (
    <Text>
      <Text color="yellow">?</Text> Stop services and switch to <Text bold>{cleanText(summary.to)}</Text>
      {summary.strategy ? <Text dimColor> ({cleanText(summary.strategy)})</Text> : null}? <Text dimColor>[y/N]</Text>
    </Text>
  );
}
