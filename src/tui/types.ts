/** The TUI's handle and options, shared by its public face (index.ts) and the lazily loaded app. */
import type { UpgradeListener } from '../events/index.js';
import type { ConfirmSummary } from './view.js';

export interface UpgradeTuiOptions {
  /** Ask "Stop services and switch to X? [y/N]" before the switch; false (--yes) answers yes. Default true. */
  confirm?: boolean;
  /** Called once on Ctrl-C: abort the upgrade (it stops safely or finishes the switch). */
  onCancel(): void;
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  stderr?: NodeJS.WriteStream;
  /** Spinner and live elapsed time (default true). */
  animate?: boolean;
}

export interface UpgradeTui {
  /** Pass as `onEvent` to runUpgrade; the app exits after drawing the `result` event. */
  listener: UpgradeListener;
  /** Pass as `confirm` to runUpgrade; resolves false on "n", Enter or Ctrl-C. */
  confirm(summary: ConfirmSummary): Promise<boolean>;
  /** The same as Ctrl-C in the app (for a SIGINT/SIGTERM that came from outside). */
  cancel(): void;
  /** Resolves once the result is drawn and the app has let go of the terminal. */
  waitUntilExit(): Promise<void>;
  /** Lets go of the terminal now (when runUpgrade threw and no result will come). Safe after exit. */
  unmount(): void;
}
