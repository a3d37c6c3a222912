import { Box, Text } from 'ink';
import type { ResultSummary, Tone } from '../summary.js';

const COLORS: Record<Tone, string> = { success: 'green', warning: 'yellow', error: 'red' };
const ICONS: Record<Tone, string> = { success: '✔', warning: '⚠', error: '✖' };

/** The SPEC 8 result in a bordered box: status, versions, downtime, backup; diagnosis on failure. */
export function ResultBox({ summary }: { summary: ResultSummary }) {
  const color = COLORS[summary.tone];
  const width = Math.max(...summary.facts.map((fact) => fact.label.length), 0) + 2;
  return (
    <Box
      flexDirection="column"
      alignSelf="flex-start"
      borderStyle="round"
      borderColor={color}
      paddingX={1}
      marginTop={1}
    >
      <Text bold color={color}>
        {ICONS[summary.tone]} {summary.title}
      </Text>
      {summary.facts.map((fact) => (
        <Text key={fact.label}>
          <Text dimColor>{`${fact.label}:`.padEnd(width)}</Text>
          {fact.value}
        </Text>
      ))}
      {summary.lists.map((list) => (
        <Box key={list.label} flexDirection="column" marginTop={1}>
          <Text bold>{list.label}:</Text>
          {list.items.map((item, index) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: a fixed list, never reordered
            <Text key={index}>{`  ${list.numbered ? `${index + 1}.` : '•'} ${item}`}</Text>
          ))}
        </Box>
      ))}
    </Box>
  );
}
