/**
 * npm run bench:collector — the collector part of bench:ingest alone: the collector's events/s
 * against a bare kafkajs producer sending the same events in the same run (test/lib/collector-bench.ts
 * says how they are made alike). Prints figures; asserts nothing about speed.
 *
 *   BENCH_HTTP_EVENTS (default 50000)  BENCH_ROUNDS (alternations, default 3)
 *   BENCH_COLLECTOR_NODE_ARGS: node flags for the collector process only (NODE_OPTIONS refuses --cpu-prof), e.g.
 *     '--cpu-prof --cpu-prof-dir=/tmp/prof' (the profile is written when the bench stops it)
 */
import os from 'node:os';
import { createTestTopics, kafka, makeEvent, rng, suffix } from '../lib/index.js';
import { collectorVsProducer } from '../lib/collector-bench.js';

const HTTP_N = Number(process.env.BENCH_HTTP_EVENTS ?? 50_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

async function main() {
  const k = kafka();
  const admin = k.admin();
  await admin.connect();
  const topics = await createTestTopics(admin, 'colbench');
  const tag = `colbench-${suffix()}`;
  const r = rng(42);
  const events = Array.from({ length: HTTP_N }, (_, i) =>
    makeEvent(r, i, { sourceId: tag, clientPrefix: tag }),
  );
  const load0 = os.loadavg();
  try {
    const c = await collectorVsProducer({
      kafka: k,
      topics,
      events,
      sourceId: tag,
      tag,
      rounds: ROUNDS,
      nodeArgs: process.env.BENCH_COLLECTOR_NODE_ARGS?.split(' ').filter(Boolean),
    });
    const load = (l: number[]) => l.map((x) => x.toFixed(1)).join(' ');
    console.log(
      `collector benchmark: ${HTTP_N} events × ${ROUNDS} alternating rounds, batches of 1,000, 4 in flight; ` +
        `${os.cpus().length} CPUs, node ${process.version}, load ${load(load0)} before, ${load(os.loadavg())} after\n` +
        `collector: ${c.collector.toFixed(0)} events/s acknowledged by Kafka\n` +
        `bare kafkajs producer (same events, keys, batches, concurrency, producer settings): ${c.reference.toFixed(0)} events/s\n` +
        `ratio collector / bare producer: ${(c.collector / c.reference).toFixed(2)}`,
    );
  } finally {
    await admin.deleteTopics({ topics: [topics.events, topics.dlq] }).catch(() => undefined);
    await admin.disconnect();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
