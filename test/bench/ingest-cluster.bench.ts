/**
 * `BENCH_KAFKA_CLUSTER=1 npm run bench:ingest`: the same events through the real collector and
 * ingester on the single broker (replication 1) and on the three-broker cluster profile
 * (deploy/local/cluster-kafka.sh: replication 3, min.insync.replicas 2, SASL/SCRAM and ACLs), one
 * after the other in one run, into the same ClickHouse; then the on-disk bytes per event in Kafka
 * (every replica) and in ClickHouse (system.parts), the figures README *Running at scale* sizes from.
 *
 *   BENCH_CLUSTER_ROUNDS (default 2): rounds, each profile once a round, in ABBA order
 *   BENCH_CLUSTER_EVENTS (default 50000): events per profile and round, posted as NDJSON batches of 1,000,
 *   4 requests in flight (acknowledged once every in-sync replica has them: acks=-1)
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { sql } from '@mcp-audit/clickhouse';
import { ensureTopics, loadTopicDefs } from '@mcp-audit/kafka';
import {
  analyst,
  countBySource,
  ingesterEnv,
  kafka,
  makeEvent,
  portAnswering,
  rng,
  startService,
  suffix,
  waitFor,
  writeTokensFile,
} from '../lib/index.js';
import {
  clusterClient,
  clusterClientEnv,
  clusterKafka,
  clusterLocalDir,
  grantTestTopics,
} from '../lib/kafka-cluster.js';

const M = Number(process.env.BENCH_CLUSTER_EVENTS ?? 50_000);
const ROUNDS = Number(process.env.BENCH_CLUSTER_ROUNDS ?? 2);

interface Profile {
  name: string;
  rf: number;
  admin: () => Kafka;
  /** Kafka environment of a service, as its principal. */
  env: (principal: string) => Record<string, string>;
  /** Kafka data directories holding this profile's replicas. */
  dataDirs: string[];
}

/** Bytes of a topic's partition directories across the given Kafka data directories. */
function topicBytes(dataDirs: string[], topic: string): number {
  let total = 0;
  const walk = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const f of readdirSync(p)) walk(join(p, f));
    else if (p.endsWith('.log')) total += st.size; // indexes are preallocated (sparse)
  };
  for (const dir of dataDirs)
    for (const d of readdirSync(dir)) if (d.startsWith(`${topic}-`)) walk(join(dir, d));
  return total;
}

async function runProfile(p: Profile) {
  const tag = `bench-cluster-${suffix()}`;
  const rename = (n: string) => `e2e.${tag}.${n}`;
  const defs = ['mcp.audit.events.v1', 'mcp.audit.events.dlq'].map((n) =>
    loadTopicDefs().find((d) => d.name === n)!,
  );
  const topics = { events: rename(defs[0]!.name), dlq: rename(defs[1]!.name) };
  const group = `bench-ingester-${suffix()}`;
  const adminKafka = p.admin();
  const admin = adminKafka.admin();
  await admin.connect();
  await ensureTopics(adminKafka, defs, { maxReplicationFactor: p.rf, rename });
  const acls = p.rf > 1 ? await grantTestTopics(admin, topics, group) : [];
  const r = rng(7);
  const events = Array.from({ length: M }, (_, i) => makeEvent(r, i, { sourceId: tag, clientPrefix: tag }));
  const ch = analyst();
  try {
    // ---- collector: HTTP in, acknowledged when Kafka has it ----
    const { file, tokens } = writeTokensFile([{ sourceId: tag, scopes: ['ingest'] }]);
    const col = startService(
      'collector',
      {
        ...ingesterEnv(topics, 'unused'),
        ...p.env('collector'),
        MCP_AUDIT_COLLECTOR_PORT: '0',
        MCP_AUDIT_COLLECTOR_TOKENS_FILE: file,
        MCP_AUDIT_COLLECTOR_RATE_LIMIT_PER_MINUTE: '100000',
        MCP_AUDIT_LOG_LEVEL: 'warn',
      },
      tag,
    );
    const port = await portAnswering(col.child.pid!, '/health');
    const bodies: string[] = [];
    for (let i = 0; i < M; i += 1_000)
      bodies.push(
        events
          .slice(i, i + 1_000)
          .map((e) => JSON.stringify(e))
          .join('\n'),
      );
    let next = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++]!;
          const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${tokens[0]!.token}`, 'content-type': 'application/x-ndjson' },
            body,
          });
          if (!res.ok) throw new Error(`${p.name}: collector answered ${res.status}: ${await res.text()}`);
        }
      }),
    );
    const collector = M / ((Date.now() - t0) / 1000);
    await col.stop();

    // ---- ingester: from the topic into ClickHouse ----
    const ing = startService(
      'ingester',
      { ...ingesterEnv(topics, group, { MCP_AUDIT_LOG_LEVEL: 'warn' }), ...p.env('ingester') },
      tag,
    );
    let tFirst = 0;
    await waitFor(
      async () => {
        const c = await countBySource(ch, tag);
        if (c.distinct > 0 && tFirst === 0) tFirst = Date.now();
        return c.distinct >= M;
      },
      { timeoutMs: 600_000, intervalMs: 250, what: `${p.name}: ingester to store every event` },
    );
    const ingester = M / ((Date.now() - tFirst) / 1000);
    await ing.stop();
    const kafkaBytes = topicBytes(p.dataDirs, topics.events) / M;
    return { collector, ingester, kafkaBytes };
  } finally {
    if (acls.length > 0) await admin.deleteAcls({ filters: acls });
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
    await admin.disconnect();
    await ch.close();
  }
}

export async function kafkaClusterBench(): Promise<void> {
  await clusterKafka('up');
  const profiles: Profile[] = [
    {
      name: 'single broker (RF 1)',
      rf: 1,
      admin: kafka,
      env: () => ({}),
      dataDirs: [join(clusterLocalDir, 'kafka/data')],
    },
    {
      name: '3 brokers (RF 3, min ISR 2, SASL)',
      rf: 3,
      admin: () => clusterClient('admin'),
      env: clusterClientEnv,
      dataDirs: [1, 2, 3].map((n) => join(clusterLocalDir, `cluster/kafka-${n}/data`)),
    },
  ];
  console.log(`kafka cluster profile beside the single broker: ${M} events a run, ${ROUNDS} rounds (ABBA)`);
  // ABBA order (single, cluster, cluster, single, …): a drift in the machine's load hits both alike.
  const order = Array.from({ length: ROUNDS }, (_, i) => (i % 2 === 0 ? [0, 1] : [1, 0])).flat();
  const totals = profiles.map(() => ({ collectorS: 0, ingesterS: 0, kafkaBytes: 0, runs: 0 }));
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(
    `${pad('run', 4)}${pad('profile', 36)}${pad('collector ev/s', 16)}${pad('ingester ev/s', 16)}kafka bytes/event (all replicas)`,
  );
  for (const [i, which] of order.entries()) {
    const p = profiles[which]!;
    const x = await runProfile(p);
    const t = totals[which]!;
    t.collectorS += M / x.collector;
    t.ingesterS += M / x.ingester;
    t.kafkaBytes = x.kafkaBytes;
    t.runs++;
    console.log(
      `${pad(String(i + 1), 4)}${pad(p.name, 36)}${pad(x.collector.toFixed(0), 16)}${pad(x.ingester.toFixed(0), 16)}${x.kafkaBytes.toFixed(0)}`,
    );
  }
  const rate = (t: (typeof totals)[number], s: number) => (t.runs * M) / s;
  const [single, cluster] = totals;
  for (const [i, t] of totals.entries())
    console.log(
      `${pad('all', 4)}${pad(profiles[i]!.name, 36)}${pad(rate(t, t.collectorS).toFixed(0), 16)}${pad(rate(t, t.ingesterS).toFixed(0), 16)}${t.kafkaBytes.toFixed(0)}`,
    );
  console.log(
    `ratio cluster / single (all runs): collector ${(rate(cluster!, cluster!.collectorS) / rate(single!, single!.collectorS)).toFixed(2)}, ` +
      `ingester ${(rate(cluster!, cluster!.ingesterS) / rate(single!, single!.ingesterS)).toFixed(2)}`,
  );
  const ch = analyst();
  try {
    // Per event: its row, its event_ids reservation and its events_by_time row (the hourly rollup
    // is per client and hour, not per event).
    const parts = await ch.query<{ table: string; rows: string; bytes: string; raw: string }>(
      sql`SELECT table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes, sum(data_uncompressed_bytes) AS raw FROM system.parts WHERE active AND database = 'mcp_audit' AND table IN ('events', 'event_ids', 'events_by_time') GROUP BY table ORDER BY table`,
    );
    let perEvent = 0;
    for (const t of parts) {
      const b = Number(t.bytes) / Number(t.rows);
      perEvent += b;
      console.log(
        `clickhouse mcp_audit.${t.table}: ${Number(t.rows)} rows, ${b.toFixed(0)} bytes/row on disk (${(Number(t.raw) / Number(t.bytes)).toFixed(1)}x compression; system.parts)`,
      );
    }
    console.log(
      `clickhouse per event: ${perEvent.toFixed(0)} bytes = ${((perEvent * 10_000 * 86_400) / 2 ** 30).toFixed(0)} GiB per day at 10k events/s per replica`,
    );
    console.log(
      `kafka at 10k events/s: ${((cluster!.kafkaBytes * 10_000 * 86_400) / 2 ** 30).toFixed(1)} GiB per day across 3 replicas ` +
        `(${((cluster!.kafkaBytes * 10_000 * 86_400 * 7) / 2 ** 30).toFixed(0)} GiB for the events topic's 7-day retention)`,
    );
  } finally {
    await ch.close();
  }
}
