import { createInterface } from 'node:readline/promises';

/** SPEC 11: commands that change the box ask in a terminal; without one they proceed. */
export async function confirmInTerminal(question: string): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return true;
  const reader = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await reader.question(question)).trim());
  } finally {
    reader.close();
  }
}
