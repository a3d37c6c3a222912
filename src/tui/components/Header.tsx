import { Box, Text } from 'ink';
import type { PlanEvent } from '../../events/index.js';
import { describePlan } from '../summary.js';

/** `nuwax upgrade 1.4.0.1 → 1.4.0.2`, strategy and download size, the first lines of the notes. */
export function Header({ plan }: { plan: PlanEvent | null }) {
  if (!plan) {
    return (
      <Box marginBottom={1}>
        <Text bold>nuwax upgrade</Text>
        <Text dimColor> checking for a release…</Text>
      </Box>
    );
  }
  const { title, detail, notes } = describePlan(plan, { arrow: '→' });
  return (
    <Box flexDirection="column" marginBottom={1}>
      <Text>
        <Text bold>{plan.downloadOnly ? 'nuwax pre-stage ' : 'nuwax upgrade '}</Text>
        <Text bold color="cyan">
          {title}
        </Text>
      </Text>
      <Text dimColor>{detail}</Text>
      {notes.map((line, index) => (
        // Notes lines may repeat; their position is their identity.
        // biome-ignore lint/suspicious/noArrayIndexKey: static list, never reordered
        <Text key={index} dimColor>
          {'  '}
          {line}
        </Text>
      ))}
    </Box>
  );
}
