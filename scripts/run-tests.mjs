#!/usr/bin/env node
// Runs every compiled test file with node's own test runner, so the last lines are its summary.
// Node 20's `--test` takes no globs, so the files are listed here. Args filter by substring.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

function walk(directory) {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) return walk(full);
    return entry.name.endsWith('.test.js') ? [full] : [];
  });
}

const filters = process.argv.slice(2);
const distDir = process.env.NUWAX_DIST ?? 'dist';
const files = walk(path.join(distDir, 'test'))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const concurrency = process.env.NUWAX_TEST_CONCURRENCY ?? '2';
// ink renders only the final frame when CI is set (is-in-ci); the TUI tests check every frame.
const env = { ...process.env };
delete env.CI;
const result = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', env },
);
process.exit(result.status ?? 1);
