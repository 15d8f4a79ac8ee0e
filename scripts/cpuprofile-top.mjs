#!/usr/bin/env node
// The top self-time functions of a .cpuprofile (node --cpu-prof, or test/bench/cpu-profile.mjs):
//   node scripts/cpuprofile-top.mjs <file.cpuprofile> [rows=25]
// Self time per function (name, file, line), share of all samples, and the idle share.
import { readFileSync } from 'node:fs';

const [file, rowsArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node scripts/cpuprofile-top.mjs <file.cpuprofile> [rows]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const rows = Number(rowsArg ?? 25);
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
let total = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i] ?? 0;
  const { functionName, url, lineNumber } = nodes.get(profile.samples[i]).callFrame;
  // Paths shortened to the package (node_modules/x/…) or the file name.
  const where = url.includes('node_modules/')
    ? url.slice(url.lastIndexOf('node_modules/') + 13)
    : url.slice(url.lastIndexOf('/') + 1);
  const key = `${functionName || '(anonymous)'} ${where}${where ? `:${lineNumber + 1}` : ''}`;
  self.set(key, (self.get(key) ?? 0) + dt);
  total += dt;
}
const idle = self.get('(idle) ') ?? 0;
console.log(`${(total / 1e6).toFixed(1)} s sampled, ${((idle / total) * 100).toFixed(1)}% idle`);
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
  console.log(
    `${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1e3).toFixed(0).padStart(7)} ms  ${key}`,
  );
}
