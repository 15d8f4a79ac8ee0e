import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClickHouse, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import {
  DEFAULT_SEALER,
  clusterPartitions,
  createLegalHolds,
  createRowStream,
  createSigningKey,
  loadPublicKeys,
  loadSigningKey,
  planRetention,
  retentionPolicySchema,
  retiredHours,
  runRetention,
  sealOnce,
  verifyRange,
  type PartitionPlan,
} from '@mcp-audit/retention';
import type { Alert } from '@mcp-audit/schema';
import {
  REPO_ROOT,
  brokers,
  createTestTopics,
  ingesterEnv,
  makeEvent,
  need,
  produceEvents,
  rng,
  startService,
  suffix,
  useStackClients,
  waitFor,
  env as stack,
} from '../lib/index.js';
import {
  clickhouseCluster,
  clickhouseClusterDir,
  clickhouseClusterInfo,
  clusterNodeClients,
  clusterNodePid,
  migrateClickHouseCluster,
} from '../lib/cluster.js';
import type { Admin, Producer } from 'kafkajs';

// Retention on the ClickHouse cluster profile (deploy/local/cluster-clickhouse.sh: ch1, ch2 = shard 1,
// ch3 = shard 2), brought up by test/lib/cluster.ts like the other cluster tests, so CI runs them all
// against one cluster. NOTE: run-tests.mjs runs test files one at a time
// (--test-concurrency=1), so this file never overlaps that one's kill of ch1.
//
// The cluster's mcp_audit is reset first (dropped on every node, migrated again): a ledger chains
// every hour from its first record on, so events of past days can only be sealed by an empty ledger,
// and a test database of its own is not possible (the inter-server user may read mcp_audit only).
const DAY = 86_400_000;
const adminUser = () => ({
  username: need(stack, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER'),
  password: need(stack, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'),
});

let admin: Admin;
let producer: Producer;
useStackClients((c) => ({ admin, producer } = c));

let clusterName = '';
let urls: string[] = [];
let serviceUrl = '';
/** Admin clients of ch1, ch2 (shard 1) and ch3 (shard 2). */
let nodes: ClickHouse[] = [];
/** The admin through the Distributed tables (ch3), as the retention service connects. */
let ch: ClickHouse;
const dir = mkdtempSync(join(tmpdir(), 'cluster-retention-'));

before(async () => {
  const t0 = Date.now();
  if (clickhouseClusterDir.replace(/\/+$/, '') === `${REPO_ROOT}.local`)
    throw new Error(
      `refusing to reset the cluster of ${clickhouseClusterDir} (the npm start stack's directory)`,
    );
  clickhouseCluster('up');
  const info = clickhouseClusterInfo();
  clusterName = info.name;
  urls = info.urls;
  serviceUrl = info.serviceUrl;
  for (const url of urls) {
    const c = createClickHouse({ url, ...adminUser(), requestTimeoutMs: 60_000 });
    await c.command(sql`DROP DATABASE IF EXISTS mcp_audit`);
    await c.close();
  }
  migrateClickHouseCluster(info);
  nodes = clusterNodeClients(info, 60_000);
  ch = createClickHouse({
    url: serviceUrl,
    ...adminUser(),
    database: 'mcp_audit',
    insertTables: ['integrity_ledger', 'retention_receipts', 'legal_holds'],
    requestTimeoutMs: 120_000,
  });
  console.log(`cluster up, mcp_audit reset and migrated in ${Date.now() - t0} ms`);
});

after(async () => {
  await Promise.all([...nodes, ch].map((c) => c?.close()));
  rmSync(dir, { recursive: true, force: true });
});

/** Rows of `table` for one day partition in one node's local table. */
async function localRows(node: number, table: string, partition: string): Promise<number> {
  const local = table + '_local';
  const [r] = await nodes[node]!.query<{ n: string }>(sql`
    SELECT toUInt64(sum(rows)) AS n FROM system.parts
    WHERE database = 'mcp_audit' AND active AND table = ${local} AND partition = ${partition}`);
  return Number(r?.n ?? 0);
}

const WITH_DAY = ['events', 'events_by_time', 'event_ids', 'integrity_leaves'];
/** `table:node` -> rows, for every table that goes with an events day, on every node. */
async function dayRows(partition: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of WITH_DAY)
    for (const i of nodes.keys()) out[`${table}:ch${i + 1}`] = await localRows(i, table, partition);
  return out;
}

/** dayRows once shard 1's second replica (ch2) has fetched every part ch1 took. */
async function settledRows(partition: string): Promise<Record<string, number>> {
  return waitFor(
    async () => {
      const rows = await dayRows(partition);
      return WITH_DAY.every((t) => rows[`${t}:ch1`] === rows[`${t}:ch2`]) ? rows : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250, what: `ch2 holding ch1's rows of ${partition}` },
  );
}

const ymd = (ms: number) => new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

test('retention on the cluster: past days dropped on every node of every shard, a held day and a tampered day kept, receipts across shards, plan agrees', async () => {
  const tag = `cret-${suffix()}`;
  // Phase times for the log line at the end.
  const laps: string[] = [];
  let lapStart = Date.now();
  const lap = (what: string) => {
    laps.push(`${what} ${((Date.now() - lapStart) / 1000).toFixed(1)} s`);
    lapStart = Date.now();
  };
  const today = Math.floor(Date.now() / DAY) * DAY;
  // Four past days: removed, held, tampered, removed (policy: events 1 day).
  const days = [5, 4, 3, 2].map((n) => today - n * DAY);
  const [removedA, held, tampered, removedB] = days as [number, number, number, number];

  // Two clients the Distributed table sends to different shards (cityHash64(client_id) % 2, two shards
  // of weight 1): each day's first event goes to one shard and its last to the other, so a receipt's
  // first/last event time is right only when it reads every shard.
  const candidates = Array.from({ length: 16 }, (_, i) => `c-${tag}-edge-${i}`);
  const slots = await ch.query<{ c: string; s: string }>(
    sql`SELECT c, toString(cityHash64(c) % 2) AS s FROM (SELECT arrayJoin(${candidates}) AS c)`,
  );
  const firstClient = slots.find((x) => x.s === '0')!.c;
  const lastClient = slots.find((x) => x.s === '1')!.c;

  const r = rng(21);
  const events: Array<Record<string, unknown>> = [];
  const perDay = 300;
  for (const day of days) {
    for (let i = 0; i < perDay; i++) {
      const e = makeEvent(r, i, { sourceId: tag, clientPrefix: `c-${tag}`, clients: 40 });
      const ts = day + 60_000 + Math.floor((i / perDay) * (DAY - 120_000));
      events.push({ ...e, ts: new Date(ts).toISOString() });
    }
    const edge = (client: string, ts: number) => {
      const e = makeEvent(r, 0, { sourceId: tag, clientPrefix: `c-${tag}`, clients: 1 });
      return { ...e, client: { ...(e.client as object), id: client }, ts: new Date(ts).toISOString() };
    };
    events.push(edge(firstClient, day + 1_000), edge(lastClient, day + DAY - 2_000));
  }

  // Through the real ingester into the Distributed tables, as the writer.
  const topics = await waitFor(() => createTestTopics(admin, 'cluster-retention', 3), {
    timeoutMs: 30_000,
    intervalMs: 500,
  });
  await produceEvents(producer, topics.events, events);
  const ingester = startService(
    'ingester',
    ingesterEnv(topics, `e2e-cret-${suffix()}`, { MCP_AUDIT_CLICKHOUSE_URL: serviceUrl }),
    tag,
  );
  try {
    await waitFor(
      async () => {
        const [x] = await ch.query<{ n: string }>(
          sql`SELECT uniqExact(event_id) AS n FROM mcp_audit.events WHERE source_id = ${tag}`,
        );
        return Number(x?.n ?? 0) >= events.length ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500, what: `${events.length} events through the cluster` },
    );
  } finally {
    assert.equal(await ingester.stop(), 0, 'ingester: graceful exit');
    await admin.deleteTopics({ topics: [topics.events, topics.dlq] }).catch(() => {});
  }

  // Each day on both shards, and shard 1's replicas equal.
  const before: Record<string, Record<string, number>> = {};
  for (const day of days) {
    const p = ymd(day);
    before[p] = await settledRows(p);
    const b = before[p]!;
    assert.ok(b['events:ch1']! > 0 && b['events:ch3']! > 0, `${p} on both shards: ${JSON.stringify(b)}`);
    assert.equal(b['events:ch1']! + b['events:ch3']!, perDay + 2, `${p}: every event stored once`);
  }

  lap('ingest');
  // The ledger sealed through the Distributed tables (every hour up to now; cutoff after the ingest).
  const keyFile = join(dir, 'signing.key');
  const pubDir = join(dir, 'keys');
  createSigningKey(keyFile, pubDir);
  const key = loadSigningKey(keyFile);
  const partitions = clusterPartitions({
    cluster: clusterName,
    database: 'mcp_audit',
    nodes: urls.map((url, i) => ({ name: url, ch: nodes[i]! })),
  });
  const stream = createRowStream({ url: serviceUrl, ...adminUser(), database: 'mcp_audit' });
  const db = { ch, database: 'mcp_audit', stream, partitions };
  const sealedAt = Date.now() + 2_000;
  const sealed = await sealOnce(
    { db, key, dir: join(dir, 'ledger'), now: () => sealedAt },
    { ...DEFAULT_SEALER, ingestMarginMs: 0 },
  );
  assert.equal(sealed.rows, events.length, 'every event sealed once');
  const publicKeys = loadPublicKeys(pubDir);
  const vopts = { sealGraceMs: 25 * 60_000, addendumWindowMs: 7 * DAY };
  const verifyDays = (from: number, to: number) =>
    verifyRange({ db, publicKeys, dir: join(dir, 'ledger'), now: () => sealedAt }, from, to, vopts);
  const clean = await verifyDays(removedA, removedB + DAY);
  assert.ok(clean.ok, `the sealed days verify on the cluster: ${JSON.stringify(clean.failing.slice(0, 2))}`);
  assert.equal(clean.rowsChecked, events.length);

  lap('seal + verify');
  // Tampering with one replica's local table: ALTER … UPDATE on ch2 (shard 1's second replica).
  const [victim] = await nodes[1]!.query<{ id: string }>(sql`
    SELECT toString(event_id) AS id FROM mcp_audit.events_local
    WHERE source_id = ${tag} AND toYYYYMMDD(ts) = ${Number(ymd(tampered))} ORDER BY event_id LIMIT 1`);
  assert.ok(victim, 'shard 1 holds events of the tampered day');
  await nodes[1]!.command(
    sql`ALTER TABLE mcp_audit.events_local UPDATE tool_name = 'tampered' WHERE event_id = ${victim.id}`,
  );
  await waitFor(
    async () => {
      const [x] = await ch.query<{ tool: string }>(
        sql`SELECT tool_name AS tool FROM mcp_audit.events WHERE event_id = ${victim.id}`,
      );
      return x?.tool === 'tampered' ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250, what: 'the update visible through the Distributed table' },
  );

  // A legal hold over one hour of the held day.
  const holds = createLegalHolds({ ch, database: 'mcp_audit' });
  const hold = await holds.create({
    case_id: `IR-${tag}`,
    reason: 'litigation',
    from: iso(held + 3 * 3_600_000),
    to: iso(held + 4 * 3_600_000),
    clients: [],
    actor: 'compliance-officer',
  });

  lap('tamper + hold');
  // `retention plan` (the CLI, configured for the cluster as the migrations are) before the run.
  const planOut = execFileSync('node', [`${REPO_ROOT}services/retention/dist/src/cli.js`, 'plan'], {
    env: {
      PATH: process.env.PATH ?? '',
      MCP_AUDIT_KAFKA_BROKERS: brokers.join(','),
      MCP_AUDIT_CLICKHOUSE_URL: serviceUrl,
      MCP_AUDIT_CLICKHOUSE_ADMIN_USER: adminUser().username,
      MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD: adminUser().password,
      MCP_AUDIT_CLICKHOUSE_CLUSTER: clusterName,
      MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS: urls.join(','),
      MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR: pubDir,
      MCP_AUDIT_LEDGER_DIR: join(dir, 'ledger'),
      MCP_AUDIT_RETENTION_POLICY: '{"events":1}',
    },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const planned = planOut
    .trim()
    .split('\n')
    .filter((l) => / events \d{8} /.test(l));
  const rowsOf = (day: number) => before[ymd(day)]!['events:ch1']! + before[ymd(day)]!['events:ch3']!;
  assert.deepEqual(
    planned.map((l) => l.split(':')[0]),
    [
      `remove events ${ymd(removedA)} (${rowsOf(removedA)} rows)`,
      `keep   events ${ymd(held)} (${rowsOf(held)} rows)`,
      `keep   events ${ymd(tampered)} (${rowsOf(tampered)} rows)`,
      `remove events ${ymd(removedB)} (${rowsOf(removedB)} rows)`,
    ],
    planOut,
  );
  assert.match(planned[1]!, new RegExp(`legal hold: IR-${tag} \\(${hold.hold_id}\\)`));
  assert.match(planned[2]!, /does not verify: \d+ failing hours/);

  lap('plan (CLI)');
  // The run, with partitions listed and dropped on every shard.
  const alerts: Alert[] = [];
  const deps = {
    ch,
    database: 'mcp_audit',
    stream,
    partitions,
    holds,
    publicKeys,
    ledgerDir: join(dir, 'ledger'),
    verify: vopts,
  };
  const kept = {
    [ymd(held)]: await settledRows(ymd(held)),
    [ymd(tampered)]: await settledRows(ymd(tampered)),
  };
  for (const rows of Object.values(kept)) assert.ok(rows['integrity_leaves:ch3']! > 0, 'leaves on shard 2');
  const policy = retentionPolicySchema.parse({ events: 1 });
  const plan = (await planRetention(deps, policy)).filter((p) => p.table === 'events');
  // The run with shard 1's LEADER replica killed: the drops wait for the survivor's election (the dead
  // one's ZooKeeper session times out, 10 s here), it is skipped, and replays the drops once back.
  const leaders = await Promise.all(
    [0, 1].map(async (i) => {
      const [x] = await nodes[i]!.query<{ l: number }>(
        sql`SELECT is_leader AS l FROM system.replicas WHERE database = 'mcp_audit' AND table = 'events_local'`,
      );
      return Number(x?.l ?? 0) === 1;
    }),
  );
  const victimNode = leaders[0] ? 0 : 1;
  assert.ok(leaders[victimNode], 'shard 1 has a leader');
  const pid = clusterNodePid(`ch${victimNode + 1}` as 'ch1' | 'ch2' | 'ch3');
  process.kill(pid, 'SIGKILL');
  await waitFor(
    () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    },
    { what: `ch${victimNode + 1} gone` },
  );
  let run: Awaited<ReturnType<typeof runRetention>>;
  try {
    run = await runRetention(
      {
        ...deps,
        key,
        receiptsDir: join(dir, 'receipts'),
        raiseAlerts: async (a) => void alerts.push(...a),
      },
      policy,
    );
  } finally {
    clickhouseCluster('up');
  }
  const [elected] = await nodes[1 - victimNode]!.query<{ l: number }>(
    sql`SELECT is_leader AS l FROM system.replicas WHERE database = 'mcp_audit' AND table = 'events_local'`,
  );
  assert.equal(Number(elected?.l), 1, `ch${2 - victimNode} took over as shard 1's leader`);
  lap(`plan + run with ch${victimNode + 1} down, restart`);
  const line = (p: PartitionPlan) => `${p.action} ${p.partition} ${p.rows}`;
  assert.deepEqual(
    [...run.removed, ...run.kept]
      .filter((p) => p.table === 'events')
      .map(line)
      .sort(),
    plan.map(line).sort(),
    'the run did what the plan said',
  );
  assert.deepEqual(
    run.removed.map((p) => `${p.table} ${p.partition}`),
    [`events ${ymd(removedA)}`, `events ${ymd(removedB)}`],
  );

  // Removed days: gone from every local table on every node of both shards (the restarted replica
  // once it has replayed the drops).
  for (const day of [removedA, removedB]) {
    const left = await waitFor(
      async () => {
        const rest = Object.entries(await dayRows(ymd(day))).filter(([, n]) => n !== 0);
        return rest.length === 0 ? rest : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: `${ymd(day)} gone everywhere` },
    );
    assert.deepEqual(left, []);
  }
  // Kept days: untouched on every node.
  for (const day of [held, tampered])
    assert.deepEqual(await dayRows(ymd(day)), kept[ymd(day)], `${ymd(day)} kept on every node`);

  // One critical alert, for the tampered day only, naming the changed event.
  assert.deepEqual(
    alerts.map((a) => [a.severity, a.dedup_key]),
    [['critical', `ledger-integrity:events:${ymd(tampered)}`]],
  );
  const report = await verifyDays(tampered, tampered + DAY);
  assert.ok(!report.ok);
  const changed = report.failing.flatMap((h) => h.problems.filter((p) => p.kind === 'rows_changed'));
  assert.equal(changed.length, 1, JSON.stringify(report.failing));
  assert.deepEqual(changed[0]!.sample, [victim.id]);

  // Receipts (table + directory) count every shard's rows and span every shard's events.
  const receipts = await ch.query<{ partition: string; rows: string; first: string; last: string }>(sql`
    SELECT partition, toString(rows) AS rows, toString(toUnixTimestamp(first_ts)) AS first,
      toString(toUnixTimestamp(last_ts)) AS last
    FROM mcp_audit.retention_receipts WHERE table_name = 'events' ORDER BY partition`);
  assert.deepEqual(
    receipts.map((x) => [x.partition, Number(x.rows), Number(x.first) * 1000, Number(x.last) * 1000]),
    [removedA, removedB].map((day) => [ymd(day), rowsOf(day), day + 1_000, day + DAY - 2_000]),
  );
  assert.equal(readdirSync(join(dir, 'receipts')).length, 2);

  // Retired hours verify as retired; the days that stay are named as before.
  const retired = await retiredHours(ch, 'mcp_audit', publicKeys);
  const all = await verifyRange(
    { db, publicKeys, dir: join(dir, 'ledger'), now: () => sealedAt, retiredHours: retired },
    removedA,
    removedB + DAY,
    vopts,
  );
  const failingDays = new Set(
    all.failing.filter((h) => h.status !== 'retired').map((h) => h.hour.slice(0, 10)),
  );
  assert.deepEqual([...failingDays], [new Date(tampered).toISOString().slice(0, 10)]);
  lap('checks');
  console.log(
    `cluster retention (${laps.join(', ')}): removed ${run.removed.map(line).join(', ')}; kept ${run.kept.map(line).join(', ')}; ` +
      `shard rows per day ${JSON.stringify(Object.fromEntries(days.map((d) => [ymd(d), [before[ymd(d)]!['events:ch1'], before[ymd(d)]!['events:ch3']]])))}`,
  );
});
