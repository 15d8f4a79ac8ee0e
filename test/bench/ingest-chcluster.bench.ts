/**
 * `BENCH_CLICKHOUSE_CLUSTER=1 npm run bench:ingest`: the real ingester from the tests' Kafka into the
 * single test ClickHouse and into the ClickHouse cluster profile (test/lib/cluster.ts: ch1 + ch2 =
 * shard 1, ch3 = shard 2; the ingester writes the Distributed tables through ch3, synchronously to
 * both shards), one after the other in one run, in ABBA rounds: events/s first row → last, and the
 * ratio cluster / single. Same events each run (same seed, fresh ids: the event-id check would refuse
 * ids stored by an earlier run), produced before the ingester starts. After each run, the api's event
 * search for one client over the last hour (buildApi + inject(), as the api user and reader of that
 * profile): BENCH_CLUSTER_READS reads (default 20), the median.
 *
 *   BENCH_CLUSTER_ROUNDS (default 2): rounds, each profile once a round, in ABBA order
 *   BENCH_CLUSTER_EVENTS (default 50000): events per profile and run
 */
import { buildApi, clickHouseAccessLog, defaultApiConfig, staticKeyRing } from '@mcp-audit/api';
import { createClickHouse, type ClickHouse } from '@mcp-audit/clickhouse';
import { createKafka, createProducer, kafkaConfigFromEnv, kafkaEnvSchema } from '@mcp-audit/kafka';
import { createLogger, generateKey, hashKey } from '@mcp-audit/service-kit';
import {
  countBySource,
  createTestTopics,
  env,
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
import { startClickHouseCluster } from '../lib/cluster.js';

const M = Number(process.env.BENCH_CLUSTER_EVENTS ?? 50_000);
const ROUNDS = Number(process.env.BENCH_CLUSTER_ROUNDS ?? 2);
const READS = Number(process.env.BENCH_CLUSTER_READS ?? 20);

interface Profile {
  name: string;
  url: string;
}

const userOn = (url: string, role: 'ANALYST' | 'API' | 'API_READER', insertTables?: string[]): ClickHouse =>
  createClickHouse({
    url,
    username: need(env, `MCP_AUDIT_CLICKHOUSE_${role}_USER`),
    password: need(env, `MCP_AUDIT_CLICKHOUSE_${role}_PASSWORD`),
    database: 'mcp_audit',
    application: 'mcp-audit-api',
    ...(insertTables ? { insertTables } : {}),
  });

/** Median ms of the api's event search for one client over the last hour, on the profile's ClickHouse. */
async function apiSearchMs(url: string): Promise<number> {
  const log = createLogger('chcluster-bench', { level: 'silent' });
  const reader = userOn(url, 'API_READER');
  const writer = userOn(url, 'API', ['access_log']);
  const kafkaEnv = kafkaEnvSchema.parse({ MCP_AUDIT_KAFKA_BROKERS: env.MCP_AUDIT_KAFKA_BROKERS });
  const producer = createProducer(createKafka(kafkaConfigFromEnv(kafkaEnv, 'chcluster-bench'), log));
  const key = generateKey('mcpa');
  const app = await buildApi(defaultApiConfig(), {
    reader,
    writer,
    producer,
    keys: staticKeyRing([{ id: 'bench', sha256: hashKey(key), scopes: ['analyst'] }]),
    accessLog: clickHouseAccessLog(writer),
    log,
  });
  try {
    await app.ready();
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const ms: number[] = [];
    for (let i = 0; i < READS; i++) {
      const t0 = performance.now();
      const res = await app.inject({
        url: `/api/v1/events?client=bench-chcluster-${i % 500}&from=${from}&limit=100`,
        headers: { authorization: `Bearer ${key}` },
      });
      if (res.statusCode !== 200)
        throw new Error(`api answered ${res.statusCode}: ${res.body.slice(0, 200)}`);
      ms.push(performance.now() - t0);
    }
    return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;
  } finally {
    await app.close();
    await Promise.all([reader.close(), writer.close()]);
  }
}

async function runProfile(p: Profile): Promise<{ ingester: number; produceS: number; searchMs: number }> {
  const k = kafka();
  const admin = k.admin();
  await admin.connect();
  const producer = k.producer({ idempotent: true, allowAutoTopicCreation: false });
  await producer.connect();
  const tag = `bench-chcluster-${suffix()}`;
  const topics = await waitFor(() => createTestTopics(admin, 'chcluster'), { timeoutMs: 30_000 });
  const r = rng(16);
  const events = Array.from({ length: M }, (_, i) =>
    makeEvent(r, i, { sourceId: tag, clientPrefix: 'bench-chcluster', clients: 500 }),
  );
  const ch = userOn(p.url, 'ANALYST');
  try {
    const t0 = Date.now();
    await produceEvents(producer, topics.events, events, 2_000);
    const produceS = (Date.now() - t0) / 1000;
    const ing = startService(
      'ingester',
      ingesterEnv(topics, `bench-${suffix()}`, {
        MCP_AUDIT_CLICKHOUSE_URL: p.url,
        MCP_AUDIT_LOG_LEVEL: 'warn',
      }),
      tag,
    );
    let tFirst = 0;
    try {
      await waitFor(
        async () => {
          const c = await countBySource(ch, tag);
          if (c.distinct > 0 && tFirst === 0) tFirst = Date.now();
          return c.distinct >= M;
        },
        { timeoutMs: 600_000, intervalMs: 250, what: `${p.name}: every event stored` },
      );
    } finally {
      await ing.stop();
    }
    const ingester = M / ((Date.now() - tFirst) / 1000);
    const searchMs = await apiSearchMs(p.url).catch((err: Error) => {
      console.log(`${p.name}: api search could not run (${err.message.split('\n')[0]})`);
      return NaN;
    });
    return { ingester, produceS, searchMs };
  } finally {
    await admin.deleteTopics({ topics: [topics.events, topics.dlq] }).catch(() => undefined);
    await producer.disconnect();
    await admin.disconnect();
    await ch.close();
  }
}

export async function clickhouseClusterBench(): Promise<void> {
  const chCluster = startClickHouseCluster();
  const profiles: Profile[] = [
    { name: 'single ClickHouse', url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123' },
    { name: 'cluster (2 shards, 3 nodes)', url: chCluster.serviceUrl },
  ];
  console.log(
    `clickhouse cluster profile beside the single server: ${M} events a run, ${ROUNDS} rounds (ABBA), ingester → ${profiles.map((p) => p.url).join(' / ')}`,
  );
  const order = Array.from({ length: ROUNDS }, (_, i) => (i % 2 === 0 ? [0, 1] : [1, 0])).flat();
  const seconds = profiles.map(() => ({ s: 0, runs: 0, search: [] as number[] }));
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(
    `${pad('run', 4)}${pad('profile', 30)}${pad('ingester ev/s', 16)}${pad('produce s', 12)}api search ms (median of ${READS})`,
  );
  for (const [i, which] of order.entries()) {
    const p = profiles[which]!;
    const x = await runProfile(p);
    seconds[which]!.s += M / x.ingester;
    seconds[which]!.runs++;
    seconds[which]!.search.push(x.searchMs);
    console.log(
      `${pad(String(i + 1), 4)}${pad(p.name, 30)}${pad(x.ingester.toFixed(0), 16)}${pad(x.produceS.toFixed(1), 12)}${x.searchMs.toFixed(1)}`,
    );
  }
  const rate = (t: { s: number; runs: number }) => (t.runs * M) / t.s;
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  for (const [i, t] of seconds.entries())
    console.log(
      `${pad('all', 4)}${pad(profiles[i]!.name, 30)}${pad(rate(t).toFixed(0), 16)}${pad('', 12)}${mean(t.search).toFixed(1)}`,
    );
  const [single, cluster] = seconds as [(typeof seconds)[0], (typeof seconds)[0]];
  console.log(
    `ratio cluster / single (all runs): ingester ${(rate(cluster) / rate(single)).toFixed(2)} (first row → last), ` +
      `api search time ${(mean(cluster.search) / mean(single.search)).toFixed(2)}`,
  );
}
