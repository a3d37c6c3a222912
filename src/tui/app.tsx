/**
 * The ink app of `nuwax upgrade` in a terminal (SPEC 11). Loaded only through the dynamic
 * import in ./index.ts, so commands that never draw a TUI never load ink or React.
 */
import { Box, type RenderOptions, render, Text, useApp, useInput, useStdout } from 'ink';
import { useEffect, useState, useSyncExternalStore } from 'react';
import { cleanText } from './format.js';
import { Confirm } from './components/Confirm.js';
import { Header } from './components/Header.js';
import { ResultBox } from './components/ResultBox.js';
import { StepList } from './components/StepList.js';
import { describeCancel, describeResult } from './summary.js';
import { createViewStore, type ViewState, type ViewStore } from './view.js';
import type { UpgradeTui, UpgradeTuiOptions } from './types.js';

const LOG_COLORS = { info: undefined, warn: 'yellow', error: 'red' } as const;

export interface UpgradeAppProps {
  store: ViewStore;
  /** Spinner and live elapsed times; off gives still frames (tests). */
  animate?: boolean;
}

export function UpgradeApp({ store, animate = true }: UpgradeAppProps) {
  const state = useSyncExternalStore(store.subscribe, store.getState);
  const { exit } = useApp();
  const { stdout } = useStdout();
  const tick = useTick(animate && state.result === null);
  useInput((input, key) => {
    if (key.ctrl && input === 'c') store.cancel();
  });
  useEffect(() => {
    // The result is the last event: draw it, then let waitUntilExit() resolve.
    if (state.result) exit();
  }, [state.result, exit]);
  const barWidth = Math.max(10, Math.min(40, (stdout.columns || 80) - 60));
  return (
    <Box flexDirection="column">
      <Header plan={state.plan} />
      <StepList
        steps={state.steps}
        progress={state.progress}
        tick={animate ? tick : null}
        now={Date.now()}
        barWidth={barWidth}
      />
      <Logs state={state} />
      {state.confirm ? <Confirm summary={state.confirm} onAnswer={store.answer} /> : null}
      {state.answered && !state.answered.yes && !state.cancelling ? (
        <Text color="yellow">Not switched: the running version stays.</Text>
      ) : null}
      <CancelNote state={state} />
      {state.result ? <ResultBox summary={describeResult(state.result, { arrow: '→' })} /> : null}
    </Box>
  );
}

function Logs({ state }: { state: ViewState }) {
  if (state.logs.length === 0) return null;
  return (
    <Box flexDirection="column" marginTop={1}>
      {state.logs.map((log, index) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: the last few lines, appended only
        <Text key={index} color={LOG_COLORS[log.level]} dimColor={log.level === 'info'}>
          {log.level === 'info' ? '  ' : log.level === 'warn' ? '⚠ ' : '✖ '}
          {cleanText(log.message)}
        </Text>
      ))}
    </Box>
  );
}

function CancelNote({ state }: { state: ViewState }) {
  if (!state.cancelling) return null;
  if (state.result) return <Text color="yellow">{describeCancel(state.result)}</Text>;
  return (
    <Text color="yellow">
      Cancelling safely…{state.cancelDuringSwitch ? ' the switch has started: it finishes or rolls back first.' : ''}
    </Text>
  );
}

function useTick(enabled: boolean): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!enabled) return undefined;
    const timer = setInterval(() => setTick((value) => value + 1), 100);
    return () => clearInterval(timer);
  }, [enabled]);
  return tick;
}

export function mountUpgradeTui(options: UpgradeTuiOptions): UpgradeTui {
  const store = createViewStore({ onCancel: options.onCancel, ask: options.confirm ?? true });
  // Ctrl-C is a cancel, not an exit: the upgrade must end on a known version (SPEC 9, 11).
  const renderOptions: RenderOptions = { exitOnCtrlC: false };
  // ink takes a stream given as undefined for one given: only the streams passed are set.
  if (options.stdout) renderOptions.stdout = options.stdout;
  if (options.stdin) renderOptions.stdin = options.stdin;
  if (options.stderr) renderOptions.stderr = options.stderr;
  const instance = render(<UpgradeApp store={store} animate={options.animate ?? true} />, renderOptions);
  let exited = false;
  const exit = instance.waitUntilExit().then(() => {
    exited = true;
  });
  return {
    listener: store.listener,
    confirm: store.confirm,
    cancel: store.cancel,
    waitUntilExit: () => exit,
    unmount: () => {
      if (!exited) instance.unmount();
    },
  };
}
