/**
 * node test/dist/bench/hotpath.bench.js — CPU microseconds per event of the ingester's hot path:
 * parseEvent, then redactEvent on its result, for realistic events (makeEvent) with 1% invalid
 * ones mixed in, so the error path runs too. Needs no stack. Prints the best of several rounds
 * (the least disturbed by other processes); asserts nothing about speed.
 *
 *   BENCH_EVENTS (default 5000)  BENCH_ROUNDS (default 30)
 */
import { parseEvent, type AuditEventV1 } from '@mcp-audit/schema';
import { createEventRedactor } from '@mcp-audit/redaction';
import { makeEvent, rng } from '../lib/index.js';

const N = Number(process.env.BENCH_EVENTS ?? 5000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);

const r = rng(1);
const inputs = Array.from({ length: N }, (_, i) => {
  const e = makeEvent(r, i, { sourceId: 'bench' });
  if (i % 100 === 99) e.duration_ms = -1;
  return Buffer.from(JSON.stringify(e));
});
const redactor = createEventRedactor({ fingerprintKey: 'bench-key-0123456789' });

const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

let parseBest = Infinity;
let redactBest = Infinity;
for (let round = 0; round < ROUNDS; round++) {
  const t0 = cpuUs();
  const parsed = inputs.map((b) => parseEvent(b));
  const t1 = cpuUs();
  let redacted = 0;
  for (const p of parsed) {
    if (!p.ok) continue;
    redactor.redactEvent(p.event as AuditEventV1, p.raw);
    redacted++;
  }
  const t2 = cpuUs();
  parseBest = Math.min(parseBest, (t1 - t0) / N);
  redactBest = Math.min(redactBest, (t2 - t1) / redacted);
}
console.log(
  JSON.stringify({
    events: N,
    rounds: ROUNDS,
    parseEventUs: +parseBest.toFixed(1),
    redactEventUs: +redactBest.toFixed(1),
    totalUs: +(parseBest + redactBest).toFixed(1),
  }),
);
