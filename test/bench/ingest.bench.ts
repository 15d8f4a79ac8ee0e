/**
 * npm run bench:ingest — sustained events/s from Kafka into ClickHouse with one ingester, next to
 * ClickHouse's own Kafka table engine consuming the same topic contents (the native ceiling), the
 * collector's events/s with batched requests, and the ingester's peak RSS. Prints figures; asserts
 * nothing about speed (shared, noisy machines).
 *
 *   BENCH_EVENTS (default 200000)  BENCH_HTTP_EVENTS (default 50000)
 *   BENCH_COLLECTOR_NODE_ARGS: node flags for the collector process only (e.g. --cpu-prof)
 *   BENCH_INGESTER_NODE_OPTIONS: NODE_OPTIONS for the ingester process only; to profile it,
 *     BENCH_INGESTER_NODE_OPTIONS="--import $PWD/test/bench/cpu-profile.mjs" CPU_PROFILE_DIR=/tmp/prof
 *     (the profile is written when the bench stops the ingester)
 *   MCP_AUDIT_INGESTER_LANES, _FETCH_BYTES_PER_PARTITION, _BATCH_ROWS, _FLUSH_MS,
 *   _MAX_BUFFERED_ROWS: passed to the ingester when set (its tuning; see its config.ts)
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createClickHouse, sql, ident } from '@mcp-audit/clickhouse';
import {
  analyst,
  countBySource,
  createTestTopics,
  env,
  portAnswering,
  ingesterEnv,
  kafka,
  makeEvent,
  need,
  produceEvents,
  rng,
  startService,
  suffix,
  waitFor,
} from '../lib/index.js';
import { collectorVsProducer } from '../lib/collector-bench.js';
import { kafkaClusterBench } from './ingest-cluster.bench.js';
import { clickhouseClusterBench } from './ingest-chcluster.bench.js';

const N = Number(process.env.BENCH_EVENTS ?? 200_000);
const HTTP_N = Number(process.env.BENCH_HTTP_EVENTS ?? 50_000);

function rssOf(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => {
    const line = s.split('\n').find((l) => l.startsWith(`${field}:`));
    return Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) * 1024;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** The ingester's tuning variables set in the bench's environment, passed on to it. */
function ingesterTuning(): Record<string, string> {
  const names = ['LANES', 'FETCH_BYTES_PER_PARTITION', 'BATCH_ROWS', 'FLUSH_MS', 'MAX_BUFFERED_ROWS'];
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = process.env[`MCP_AUDIT_INGESTER_${n}`];
    if (v) out[`MCP_AUDIT_INGESTER_${n}`] = v;
  }
  return out;
}

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;

async function main() {
  const k = kafka();
  const admin = k.admin();
  await admin.connect();
  const producer = k.producer({ idempotent: true });
  await producer.connect();
  const ch = analyst();
  const chAdmin = createClickHouse({
    url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    username: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER'),
    password: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'),
  });
  const tag = `bench-${suffix()}`;
  const topics = await createTestTopics(admin, 'bench');
  const r = rng(42);
  const events = Array.from({ length: N }, (_, i) =>
    makeEvent(r, i, { sourceId: tag, clientPrefix: tag, clients: 500 }),
  );
  const avgBytes = Math.round(events.slice(0, 1000).reduce((s, e) => s + JSON.stringify(e).length, 0) / 1000);
  console.log(`machine: ${os.cpus().length} cores, ${mb(os.totalmem())}, node ${process.version}`);
  console.log(`producing ${N} events (~${avgBytes} bytes each) to ${topics.events} …`);
  let t = Date.now();
  await produceEvents(producer, topics.events, events, 2_000);
  console.log(`  produced in ${((Date.now() - t) / 1000).toFixed(1)} s`);

  // ---- our ingester ----
  const ing = startService(
    'ingester',
    ingesterEnv(topics, `bench-${suffix()}`, {
      MCP_AUDIT_LOG_LEVEL: 'warn',
      MCP_AUDIT_INGESTER_PORT: '0',
      ...(process.env.BENCH_INGESTER_NODE_OPTIONS
        ? { NODE_OPTIONS: process.env.BENCH_INGESTER_NODE_OPTIONS }
        : {}),
      ...(process.env.CPU_PROFILE_DIR ? { CPU_PROFILE_DIR: process.env.CPU_PROFILE_DIR } : {}),
      ...ingesterTuning(),
    }),
    tag,
  );
  const pid = ing.child.pid!;
  // Logging at warn (no "listening" line): the port it got is found from /proc.
  const opsPort = await portAnswering(pid, '/health');
  let peak = 0;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, rssOf(pid).hwm);
    } catch {
      /* exited */
    }
  }, 200);
  const tStart = Date.now();
  let tFirst = 0;
  let lastCount = 0;
  await waitFor(
    async () => {
      const c = await countBySource(ch, tag);
      if (c.distinct > 0 && tFirst === 0) tFirst = Date.now();
      lastCount = c.distinct;
      return c.distinct >= N;
    },
    { timeoutMs: 900_000, intervalMs: 250, what: 'ingester to store every event' },
  );
  const tDone = Date.now();
  clearInterval(sampler);
  peak = Math.max(peak, rssOf(pid).hwm);
  // The event_id check before each chunk is written (one event_ids lookup per chunk).
  const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
  const metric = (name: string) => {
    // `name 12` or `name{service="ingester"} 12` (the registry's default labels)
    const line = metrics.split('\n').find((l) => l.split(/[{ ]/)[0] === name);
    return line === undefined ? NaN : Number(line.split(' ').at(-1));
  };
  const chunks = metric('mcp_audit_ingester_event_id_lookup_seconds_count');
  await ing.stop();
  const oursTotal = N / ((tDone - tStart) / 1000);
  const oursSustained = N / ((tDone - tFirst) / 1000);
  console.log(
    `ingester: ${lastCount} rows; ${oursSustained.toFixed(0)} events/s sustained (first row → last), ${oursTotal.toFixed(0)} events/s including start-up; peak RSS ${mb(peak)}`,
  );
  console.log(
    Number.isFinite(chunks)
      ? `event_id check: ${chunks} chunks (${(N / chunks).toFixed(0)} events each), ${((metric('mcp_audit_ingester_event_id_lookup_seconds_sum') / chunks) * 1000).toFixed(1)} ms per chunk (digests + one event_ids lookup), ${metric('mcp_audit_ingester_event_id_lookup_seconds_sum').toFixed(2)} s in all`
      : 'event_id check: none (this ingester has no event_id lookup)',
  );

  // ---- ClickHouse's Kafka engine on the same topic: the native ceiling ----
  const db = `bench_${suffix()}`;
  const D = ident(db, [db]);
  const brokerList = env.MCP_AUDIT_KAFKA_BROKERS ?? '127.0.0.1:9092';
  const nativeGroup = `ch-native-${db}`;
  await chAdmin.command(sql`CREATE DATABASE ${D}`);
  try {
    // Top-level scalar fields only: the engine cannot map nested objects to columns, validates
    // nothing and redacts nothing, so this is an upper bound rather than a like-for-like copy.
    await chAdmin.command(
      sql`CREATE TABLE ${D}.native (event_id String, ts String, kind String, method String, outcome String, duration_ms UInt32, request_bytes UInt64, response_bytes UInt64) ENGINE = MergeTree() ORDER BY event_id`,
    );
    await chAdmin.command(
      sql`CREATE TABLE ${D}.queue (event_id String, ts String, kind String, method String, outcome String, duration_ms UInt32, request_bytes UInt64, response_bytes UInt64) ENGINE = Kafka(${brokerList}, ${topics.events}, ${nativeGroup}, 'JSONEachRow')`,
    );
    t = Date.now();
    await chAdmin.command(sql`CREATE MATERIALIZED VIEW ${D}.mv TO ${D}.native AS SELECT * FROM ${D}.queue`);
    let nFirst = 0;
    let nCount = 0;
    let lastProgress = Date.now();
    // Polls until every row arrived; gives up after 90 s without progress.
    for (;;) {
      const [row] = await chAdmin.query<{ n: string }>(sql`SELECT count() AS n FROM ${D}.native`);
      const n = Number(row?.n ?? 0);
      if (n > nCount) lastProgress = Date.now();
      nCount = n;
      if (nCount > 0 && nFirst === 0) nFirst = Date.now();
      if (nCount >= N) break;
      if (Date.now() - lastProgress > 90_000) throw new Error(`no progress for 90 s at ${nCount} rows`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const nDone = Date.now();
    const nativeTotal = N / ((nDone - t) / 1000);
    // The engine writes in blocks (stream_flush_interval_ms), so only end-to-end rates compare.
    console.log(
      `clickhouse kafka engine: ${nCount} rows; ${nativeTotal.toFixed(0)} events/s (MV created → last row)`,
    );
    console.log(
      `ratio ingester / native (end to end, both from start to last row): ${(oursTotal / nativeTotal).toFixed(2)}`,
    );
  } catch (err) {
    console.log(`clickhouse kafka engine: could not run (${(err as Error).message.split('\n')[0]})`);
  } finally {
    await chAdmin.command(sql`DROP TABLE IF EXISTS ${D}.mv`).catch(() => undefined);
    await chAdmin.command(sql`DROP TABLE IF EXISTS ${D}.queue`).catch(() => undefined);
    await chAdmin.command(sql`DROP DATABASE IF EXISTS ${D}`).catch(() => undefined);
  }

  // ---- collector: batched HTTP requests, next to a bare kafkajs producer sending the same ----
  const httpTag = `${tag}-http`;
  const httpEvents = Array.from({ length: HTTP_N }, (_, i) =>
    makeEvent(r, i, { sourceId: httpTag, clientPrefix: httpTag }),
  );
  const c = await collectorVsProducer({
    kafka: k,
    topics,
    events: httpEvents,
    sourceId: httpTag,
    tag: httpTag,
    nodeArgs: process.env.BENCH_COLLECTOR_NODE_ARGS?.split(' ').filter(Boolean),
  });
  console.log(
    `collector: ${c.collector.toFixed(0)} events/s acknowledged by Kafka (batches of 1,000 NDJSON events, 4 concurrent requests)\n` +
      `bare kafkajs producer, same events, batches, concurrency and producer settings: ${c.reference.toFixed(0)} events/s\n` +
      `ratio collector / bare producer: ${(c.collector / c.reference).toFixed(2)}`,
  );

  await producer.disconnect();
  await admin.disconnect();
  await ch.close();
  await chAdmin.close();
}

// BENCH_KAFKA_CLUSTER=1: the single broker beside the cluster profile instead (ingest-cluster.bench.ts);
// BENCH_CLICKHOUSE_CLUSTER=1: the single ClickHouse beside the ClickHouse cluster (ingest-chcluster.bench.ts).
(process.env.BENCH_KAFKA_CLUSTER === '1'
  ? kafkaClusterBench()
  : process.env.BENCH_CLICKHOUSE_CLUSTER === '1'
    ? clickhouseClusterBench()
    : main()
).catch((err) => {
  console.error(err);
  process.exit(1);
});
