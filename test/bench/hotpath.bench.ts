/**
 * node test/dist/bench/hotpath.bench.js — CPU microseconds per event of the ingester's hot path:
 * parseEventDocument, redactEvent on its result (with the parsed document, as the ingester calls it),
 * the row (toEventRow) and its JSONEachRow line, for realistic events (makeEvent) with 1% invalid
 * ones mixed in, so the error path runs too. Needs no stack. Prints the best of several rounds
 * (the least disturbed by other processes); asserts nothing about speed.
 *
 *   BENCH_EVENTS (default 5000)  BENCH_ROUNDS (default 30)
 */
import { parseEventDocument, type AuditEventV1 } from '@mcp-audit/schema';
import { createEventRedactor } from '@mcp-audit/redaction';
import { toEventRow } from '@mcp-audit/ingester';
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
let rowBest = Infinity;
let lineBest = Infinity;
for (let round = 0; round < ROUNDS; round++) {
  const t0 = cpuUs();
  const parsed = inputs.map((b) => parseEventDocument(b));
  const t1 = cpuUs();
  const redacted = [];
  for (const p of parsed) {
    if (!p.ok) continue;
    redacted.push(redactor.redactEvent(p.event as AuditEventV1, p.raw, p.document));
  }
  const t2 = cpuUs();
  const meta = { partition: 0, offset: '0', ingestedAtMs: Date.now() };
  const rows = redacted.map((r) => toEventRow(r.event, r.raw, meta));
  const t3 = cpuUs();
  let bytes = 0;
  for (const row of rows) bytes += JSON.stringify(row).length;
  const t4 = cpuUs();
  if (bytes === 0) throw new Error('no rows');
  parseBest = Math.min(parseBest, (t1 - t0) / N);
  redactBest = Math.min(redactBest, (t2 - t1) / redacted.length);
  rowBest = Math.min(rowBest, (t3 - t2) / rows.length);
  lineBest = Math.min(lineBest, (t4 - t3) / rows.length);
}
console.log(
  JSON.stringify({
    events: N,
    rounds: ROUNDS,
    parseEventUs: +parseBest.toFixed(1),
    redactEventUs: +redactBest.toFixed(1),
    toEventRowUs: +rowBest.toFixed(1),
    jsonLineUs: +lineBest.toFixed(1),
    totalUs: +(parseBest + redactBest + rowBest + lineBest).toFixed(1),
  }),
);
