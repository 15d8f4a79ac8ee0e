#!/usr/bin/env node
// Runs every compiled test file with Node's built-in test runner (what CI reads).
//   --unit   only package/service unit tests (no Kafka/ClickHouse needed)
// Node 20's --test takes no globs, so the files are listed here.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const unitOnly = process.argv.includes('--unit');

function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = [];
for (const group of ['packages', 'services']) {
  for (const pkg of readdirSync(join(root, group)))
    files.push(...walk(join(root, group, pkg, 'dist', 'test')));
}
if (!unitOnly)
  for (const dir of ['smoke', 'e2e', 'scenario']) files.push(...walk(join(root, 'test', 'dist', dir)));

const selected = unitOnly ? files.filter((f) => !f.includes('.int.test.js')) : files;
if (selected.length === 0) {
  console.error('no test files found: run `npm run build` first');
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-reporter=spec',
    `--test-concurrency=${process.env.MCP_AUDIT_TEST_CONCURRENCY ?? 1}`,
    ...selected,
  ],
  { stdio: 'inherit', cwd: root, env: process.env },
);
process.exit(res.status ?? 1);
