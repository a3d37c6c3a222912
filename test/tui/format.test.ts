import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  cleanText,
  firstLines,
  formatBytes,
  formatDuration,
  formatEta,
  formatProgress,
  formatRate,
  progressPercent,
} from '../../src/tui/index.js';
import { ANSI, MiB, progress } from './fixtures.js';

describe('formatting shared by the TUI and the plain renderer', () => {
  test('bytes use binary units with one decimal, whole bytes below 1 KiB', () => {
    const rows: Array<[number, string]> = [
      [0, '0 B'],
      [1023, '1023 B'],
      [1024, '1.0 KiB'],
      [12.3 * MiB, '12.3 MiB'],
      [27 * MiB, '27.0 MiB'],
      [5 * 1024 * MiB, '5.0 GiB'],
      [-5, '0 B'],
    ];
    for (const [bytes, expected] of rows) assert.equal(formatBytes(bytes), expected, `${bytes}`);
  });

  test('durations are seconds with a decimal under a minute, then minutes and hours', () => {
    const rows: Array<[number, string]> = [
      [0, '0.0s'],
      [300, '0.3s'],
      [42_100, '42.1s'],
      [59_940, '59.9s'],
      [75_000, '1m 15s'],
      [3_600_000 + 2 * 60_000, '1h 02m'],
    ];
    for (const [ms, expected] of rows) assert.equal(formatDuration(ms), expected, `${ms}`);
  });

  test('an ETA rounds up, so a fraction of a second left reads 1s', () => {
    const rows: Array<[number, string]> = [
      [0, '0s'],
      [0.2, '1s'],
      [2.6, '3s'],
      [65, '1m 05s'],
      [7300, '2h 01m'],
    ];
    for (const [seconds, expected] of rows) assert.equal(formatEta(seconds), expected, `${seconds}`);
  });

  test('percent is whole, clamped, and null when the total is unknown', () => {
    assert.equal(progressPercent({ done: 12.15 * MiB, total: 27 * MiB }), 45);
    assert.equal(progressPercent({ done: 30, total: 20 }), 100);
    assert.equal(progressPercent({ done: 0, total: 0 }), 100);
    assert.equal(progressPercent({ done: 5, total: null }), null);
  });

  test('a progress line carries percent, bytes, speed and ETA; other units and files are named', () => {
    assert.equal(formatProgress(progress(12.3 * MiB)), '45% 12.3 MiB/27.0 MiB 5.1 MiB/s ETA 3s');
    assert.equal(formatProgress(progress(27 * MiB)), '100% 27.0 MiB/27.0 MiB 5.1 MiB/s');
    assert.equal(
      formatProgress(progress(3 * MiB, { total: null, eta: null, files: 120 })),
      '3.0 MiB 5.1 MiB/s (120 files)',
    );
    assert.equal(
      formatProgress(progress(3, { step: 'loading_images', unit: 'images', total: 5, rate: 0.5, eta: 4 })),
      '60% 3/5 images 0.5 images/s ETA 4s',
    );
    assert.equal(formatProgress(progress(0, { rate: 0, eta: null })), '0% 0 B/27.0 MiB');
    assert.equal(formatRate(40, 'files'), '40 files/s');
  });

  test('escape sequences and control characters never reach the output', () => {
    const hostile = 'ok\u001b[31mred\u001b[0m \u001b]0;title\u0007x\u009b2Jy\u0000z\u0007\nnext';
    assert.equal(cleanText(hostile), 'okred xyz next');
    assert.doesNotMatch(cleanText(hostile), ANSI);
    assert.equal(cleanText('a\r\nb', true), 'a\nb');
  });

  test('release notes keep their first non-empty lines, cut to a width', () => {
    assert.deepEqual(firstLines('one\n\n  two \nthree\nfour', 3), ['one', 'two', 'three']);
    assert.deepEqual(firstLines('abcdefghij', 1, 5), ['abcd…']);
    assert.deepEqual(firstLines(null, 3), []);
  });
});
