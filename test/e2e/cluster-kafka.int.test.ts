// Issue 16, Kafka cluster: three KRaft brokers (deploy/local/cluster-kafka.sh, SASL/SCRAM and the
// ACLs of deploy/kafka/acls.json), topics at replication factor 3 and min.insync.replicas 2, the real
// collector and ingester as their own principals, the tests' single ClickHouse. One broker is
// killed with kill -9 while a client keeps posting: the collector keeps answering (any non-2xx is
// counted and the batch retried, as a client would), every acknowledged event_id is stored exactly
// once, and the broker, restarted, rejoins every partition's in-sync replicas.
//
// The cluster runs beside the tests' single stack on ports of its own (MCP_AUDIT_TEST_CLUSTER_KAFKA_PORT,
// 24392-24394, controllers 24492-24494). Already running: reused and left running; started here:
// stopped at the end.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs, { type Admin } from 'kafkajs';
import { sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { ensureTopics, loadTopicDefs } from '@mcp-audit/kafka';
import {
  analyst,
  countBySource,
  ingesterEnv,
  listeningPort,
  makeEvent,
  rng,
  startService,
  suffix,
  waitFor,
  waitForStored,
  writeTokensFile,
} from '../lib/index.js';
import {
  allInSync as inSync,
  clusterClient,
  clusterClientEnv,
  clusterKafka as cluster,
  clusterNodePid,
  grantTestTopics,
  replication as replicationOf,
} from '../lib/kafka-cluster.js';

let startedHere = false;
let admin: Admin;
let ch: ClickHouse;

before(async () => {
  // `status` fails when a node is stopped: then this run starts (and at the end stops) the cluster.
  startedHere = await cluster('status').then(
    () => false,
    () => true,
  );
  // Idempotent: starts what is not running, applies the ACLs and the declared topics.
  await cluster('up');
  admin = clusterClient('admin').admin();
  await admin.connect();
  ch = analyst();
});

after(async () => {
  await admin?.disconnect();
  await ch?.close();
  if (startedHere) await cluster('down');
});

const replication = (topics: string[]) => replicationOf(admin, topics);
const allInSync = (topics: string[]) => inSync(admin, topics);

async function topicConfig(topic: string, name: string): Promise<string | undefined> {
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic }],
  });
  return resources[0]?.configEntries.find((e) => e.configName === name)?.configValue;
}

test('declared topics on the cluster: replication factor 3, min.insync.replicas 2', async () => {
  const names = loadTopicDefs().map((d) => d.name);
  await waitFor(() => allInSync(names), {
    timeoutMs: 60_000,
    what: 'every declared partition with 3 in-sync replicas',
  });
  for (const name of names) assert.equal(await topicConfig(name, 'min.insync.replicas'), '2', name);
  const { brokers } = await admin.describeCluster();
  assert.equal(brokers.length, 3);
});

test('kill -9 of a broker mid-ingest: the collector keeps answering, nothing acknowledged is lost, the broker rejoins', async () => {
  const tag = `cluster-${suffix()}`;
  const [eventsDef, dlqDef] = ['mcp.audit.events.v1', 'mcp.audit.events.dlq'].map((n) =>
    loadTopicDefs().find((d) => d.name === n)!,
  );
  const rename = (n: string) => `e2e.${tag}.${n}`;
  const topics = { events: rename(eventsDef!.name), dlq: rename(dlqDef!.name) };
  const group = `e2e-cluster-ingester-${suffix()}`;
  // The test's own topics, made the way the services make theirs, and ACLs for them like acls.json's.
  await ensureTopics(clusterClient('admin'), [eventsDef!, dlqDef!], { maxReplicationFactor: 3, rename });
  // A broker may learn of a new topic a moment after the one that created it.
  await waitFor(() => allInSync(Object.values(topics)), {
    timeoutMs: 30_000,
    what: 'test topics with 3 in-sync replicas each partition',
  });
  assert.equal(
    await waitFor(() => topicConfig(topics.events, 'min.insync.replicas'), { timeoutMs: 30_000 }),
    '2',
  );
  const acls = await grantTestTopics(admin, topics, group);

  const { file, tokens } = writeTokensFile([{ sourceId: tag, scopes: ['ingest'] }]);
  const ing = startService(
    'ingester',
    {
      ...ingesterEnv(topics, group, { MCP_AUDIT_INGESTER_FLUSH_MS: '300' }),
      ...clusterClientEnv('ingester'),
    },
    tag,
  );
  const col = startService(
    'collector',
    {
      ...ingesterEnv(topics, 'unused'),
      ...clusterClientEnv('collector'),
      MCP_AUDIT_COLLECTOR_PORT: '0',
      MCP_AUDIT_COLLECTOR_TOKENS_FILE: file,
      MCP_AUDIT_COLLECTOR_RATE_LIMIT_PER_MINUTE: '100000',
    },
    tag,
  );
  const r = rng(16);
  const acknowledged = new Set<string>();
  const nonOk = new Map<string, number>();
  let requests = 0;
  let longestOutageMs = 0;
  let victim = 0;
  try {
    const port = await listeningPort(col, 'collector');
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok, {
      timeoutMs: 60_000,
      what: 'collector health',
    });

    /** One batch of 100 events, posted until the collector acknowledges it (2xx), like a client would. */
    let seq = 0;
    const postBatch = async () => {
      const events = Array.from({ length: 100 }, () =>
        makeEvent(r, seq++, { sourceId: tag, clientPrefix: tag, clients: 50 }),
      );
      const body = events.map((e) => JSON.stringify(e)).join('\n');
      const firstTry = Date.now();
      for (;;) {
        requests++;
        const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tokens[0]!.token}`, 'content-type': 'application/x-ndjson' },
          body,
        }).catch((err: Error) => ({ ok: false, status: `network: ${err.message}` }) as const);
        if (res.ok) {
          const json = (await (res as Response).json()) as { accepted: number };
          assert.equal(json.accepted, events.length);
          for (const e of events) acknowledged.add(e.event_id as string);
          longestOutageMs = Math.max(longestOutageMs, Date.now() - firstTry);
          return;
        }
        const key = String(res.status);
        nonOk.set(key, (nonOk.get(key) ?? 0) + 1);
        assert.ok(Date.now() - firstTry < 60_000, `the collector answered no 2xx for 60 s (${key})`);
        await new Promise((ok) => setTimeout(ok, 250));
      }
    };
    /** A steady stream: a batch every 100 ms at most (about 1,000 events/s) until `until()` says stop. */
    const stream = async (until: () => boolean) => {
      while (!until()) {
        const pace = new Promise((ok) => setTimeout(ok, 100));
        await postBatch();
        await pace;
      }
    };

    const phase = (ms: number) => {
      const end = Date.now() + ms;
      return () => Date.now() > end;
    };
    await stream(phase(6_000));
    const before = acknowledged.size;
    // The victim: the broker leading partition 0 of the events topic.
    victim = (await replication([topics.events])).find((p) => p.partition === 0)!.leader;
    process.kill(clusterNodePid(victim), 'SIGKILL');
    await stream(phase(10_000));
    const duringOutage = acknowledged.size - before;
    // Restart it while the stream goes on; it must come back into every partition's ISR.
    const t0 = Date.now();
    let restarted = false;
    const restart = cluster('up', String(victim)).finally(() => (restarted = true));
    await stream(() => restarted);
    await restart;
    const restartMs = Date.now() - t0;
    await stream(phase(3_000));
    await waitFor(() => allInSync(Object.values(topics)), {
      timeoutMs: 90_000,
      intervalMs: 500,
      what: `broker ${victim} back in the ISR of every partition`,
    });
    const rejoinMs = Date.now() - t0;

    const stored = await waitForStored(ch, tag, acknowledged.size, 120_000);
    const rows = await ch.query<{ id: string; n: string }>(
      sql`SELECT toString(event_id) AS id, count() AS n FROM mcp_audit.events FINAL WHERE source_id = ${tag} GROUP BY event_id`,
    );
    const storedIds = new Set(rows.map((row) => row.id));
    const missing = [...acknowledged].filter((id) => !storedIds.has(id));
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged events missing`);
    assert.equal(rows.length, acknowledged.size, 'nothing stored that was not acknowledged');
    assert.ok(
      rows.every((row) => row.n === '1'),
      'each acknowledged event_id visible exactly once',
    );
    const c = await countBySource(ch, tag);
    assert.ok(duringOutage > 0, 'events acknowledged while the broker was down');
    console.log(
      `cluster kill -9 of broker ${victim}: ${acknowledged.size} events acknowledged in ${requests} requests ` +
        `(${duringOutage} while it was down), non-2xx: ${JSON.stringify(Object.fromEntries(nonOk))}, ` +
        `longest wait for a 2xx ${longestOutageMs} ms, stored ${stored.distinct} (physical rows ${c.physical}); ` +
        `broker restarted in ${restartMs} ms, back in every ISR after ${rejoinMs} ms`,
    );
  } finally {
    assert.equal(await col.stop(), 0, 'collector exits cleanly');
    assert.equal(await ing.stop(), 0, 'ingester exits cleanly');
    await admin.deleteAcls({ filters: acls });
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
  }
});
