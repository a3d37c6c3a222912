/**
 * Pure formatting shared by the ink TUI and the plain renderer (SPEC 11), so that both say the same
 * numbers the same way. No ANSI, no I/O: strings in, strings out.
 */
import type { ProgressEvent, StepName } from '../events/index.js';
import { formatBytes } from '../fsutil/index.js';

// The one byte formatter: the TUI, the plain lines and every other message say sizes alike.
export { formatBytes };

/** A step or downtime duration: `0.3s`, `42.1s`, `3m 05s`, `1h 02m`. */
export function formatDuration(ms: number): string {
  const safe = Math.max(0, ms);
  if (safe < 60_000) return `${(safe / 1000).toFixed(1)}s`;
  const totalSeconds = Math.round(safe / 1000);
  return formatClock(totalSeconds);
}

/** Time left, in whole seconds rounded up (an ETA of 0.2 s says `1s`, not `0s`). */
export function formatEta(seconds: number): string {
  const whole = Math.max(0, Math.ceil(seconds));
  return whole < 60 ? `${whole}s` : formatClock(whole);
}

function formatClock(totalSeconds: number): string {
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (hours > 0) return `${hours}h ${String(minutes).padStart(2, '0')}m`;
  return `${minutes}m ${String(seconds).padStart(2, '0')}s`;
}

/** Whole percent, 0 to 100, or null when the total is unknown. */
export function progressPercent(event: Pick<ProgressEvent, 'done' | 'total'>): number | null {
  if (event.total === null) return null;
  if (event.total <= 0) return 100;
  return Math.min(100, Math.max(0, Math.floor((event.done / event.total) * 100)));
}

function formatAmount(value: number, unit: ProgressEvent['unit']): string {
  return unit === undefined || unit === 'bytes' ? formatBytes(value) : String(Math.round(value));
}

/** `5.1 MiB/s`, `12 files/s`. */
export function formatRate(rate: number, unit: ProgressEvent['unit'] = 'bytes'): string {
  if (unit === 'bytes') return `${formatBytes(rate)}/s`;
  return `${rate >= 10 ? Math.round(rate) : rate.toFixed(1)} ${unit}/s`;
}

/**
 * The numbers of a progress event on one line, without the step name:
 * `45% 12.3 MiB/27.0 MiB 5.1 MiB/s ETA 3s`, `3/5 images 0.5 images/s ETA 4s`, `1.2 MiB 300.0 KiB/s (120 files)`.
 */
export function formatProgress(event: ProgressEvent): string {
  const unit = event.unit ?? 'bytes';
  const percent = progressPercent(event);
  const parts: string[] = [];
  if (percent !== null) parts.push(`${percent}%`);
  const suffix = unit === 'bytes' ? '' : ` ${unit}`;
  parts.push(
    event.total === null
      ? `${formatAmount(event.done, unit)}${suffix}`
      : `${formatAmount(event.done, unit)}/${formatAmount(event.total, unit)}${suffix}`,
  );
  if (event.rate > 0) parts.push(formatRate(event.rate, unit));
  if (event.eta !== null && event.rate > 0 && percent !== 100) parts.push(`ETA ${formatEta(event.eta)}`);
  if (event.files !== undefined) parts.push(`(${event.files} files)`);
  return parts.join(' ');
}

/** What a person reads for each step of SPEC 8 (the plain and JSON output keep the stable names). */
/** Short labels; a step without one shows its name. */
export const STEP_LABELS: Partial<Record<StepName, string>> = {
  checking: 'Check for a release',
  downloading: 'Download',
  verifying: 'Verify',
  staging: 'Extract',
  rebuilding_images: 'Rebuild images',
  loading_images: 'Load images',
  backing_up: 'Back up',
  stopping: 'Stop services',
  applying: 'Apply files',
  migrating: 'Run migrations',
  starting: 'Start services',
  health_check: 'Health check',
  committing: 'Commit',
  cleaning_up: 'Clean up',
  rolling_back: 'Roll back',
};

/** The first `count` non-empty lines of release notes, each cut to `width` characters. */
export function firstLines(text: string | null, count: number, width = 100): string[] {
  if (!text) return [];
  const lines = cleanText(text, true)
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  return lines.slice(0, count).map((line) => (line.length > width ? `${line.slice(0, width - 1)}…` : line));
}

// Escape sequences whole (CSI such as colours, OSC such as titles or links, and two-byte ones), then
// any C0 or C1 control left: text from the server (release notes) or from a failed command (error
// messages) must not move the cursor or colour the terminal (SPEC 11: plain lines).
const ESCAPES =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching escape sequences is the point
  /\u001b\[[0-?]*[ -/]*[@-~]|\u009b[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[@-_]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** Text safe to print: escape sequences and control characters removed, line breaks kept only when `multiline`. */
export function cleanText(text: string, multiline = false): string {
  const flat = multiline ? text.replace(/\r\n?/g, '\n') : text.replace(/\s*[\r\n]+\s*/g, ' ');
  return flat.replace(/\t/g, ' ').replace(ESCAPES, '').replace(CONTROL, '');
}
