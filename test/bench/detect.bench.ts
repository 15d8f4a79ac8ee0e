/**
 * npm run bench:detect — the detector under load, against the real local stack. Prints figures;
 * asserts nothing about speed (shared, noisy machines).
 *
 * 1. Baseline recompute: seeds `events_hourly` of a per-run database with BENCH_CLIENTS (10,000)
 *    clients x 28 days x 24 hours (BENCH_CALLS_PER_HOUR calls each, 2 tools on 2 servers) with
 *    INSERT … SELECT -State(…) FROM numbers(), then times `cli baselines --as-of <this hour>`.
 * 2. Detection delay under load: starts a real ingester and a real detector on the run's own topics
 *    and database, produces background traffic for the same 10,000 clients at BENCH_RATE events/s
 *    (ts = now, their usual tools, within their usual band) for BENCH_SECONDS, and every
 *    BENCH_INJECT_EVERY_MS injects an authentication burst (12 failures at once) for one of them;
 *    the delay is from Kafka's acknowledgement of the burst to its auth_burst alert arriving on the
 *    alerts topic (the streaming path; the periodic detectors' delay is dominated by their windows).
 * 3. Memory: the detector's VmRSS (/proc/<pid>/status) after start-up and once every client has
 *    been active, and its peak (VmHWM), per 10,000 active clients.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { createClickHouse, dbIdent, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { eventKeyFor } from '@mcp-audit/schema';
import {
  env,
  kafka,
  need,
  REPO_ROOT,
  startService,
  suffix,
  waitFor,
  type ServiceProcess,
  listeningPortsOfPid,
} from '../lib/index.js';

const run = promisify(execFile);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 10_000);
const DAYS = 28;
const CALLS = Number(process.env.BENCH_CALLS_PER_HOUR ?? 3);
const RATE = Number(process.env.BENCH_RATE ?? 1200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 150);
const INJECT_EVERY_MS = Number(process.env.BENCH_INJECT_EVERY_MS ?? 4000);
/** BENCH_PHASES=baselines: only seed and time the baseline recompute (for profiling it). */
const ONLY_BASELINES = process.env.BENCH_PHASES === 'baselines';
/** Extra node flags for the baseline CLI, e.g. BENCH_BASELINE_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p'. */
const BASELINE_NODE_ARGS = (process.env.BENCH_BASELINE_NODE_ARGS ?? '').split(' ').filter(Boolean);
const HOUR = 3_600_000;
const TOOLS = ['read_file', 'query', 'list_issues', 'search_code', 'send_message'];

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN;
};
function rss(pid: number): { rss: number; hwm: number } {
  const lines = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n');
  const kb = (field: string) => {
    const line = lines.find((l) => l.startsWith(field + ':')) ?? '';
    return Number(/(\d+)/.exec(line)?.[1] ?? 0) * 1024;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

async function seed(ch: ClickHouse, prefix: string, from: number) {
  const chunk = 1000;
  const hours = DAYS * 24;
  for (let c0 = 0; c0 < CLIENTS; c0 += chunk) {
    const n = Math.min(chunk, CLIENTS - c0);
    // number → client (fastest), hour, call; each client uses tools c%5 and (c+1)%5 on two servers.
    await ch.command(sql`
      INSERT INTO events_hourly (hour, client_id, calls, errors, auth_failures, tools, servers, tool_set, server_set, request_bytes, response_bytes)
      SELECT hour, client_id, uniqExactState(id), uniqExactIfState(id, toUInt8(0)), uniqExactIfState(id, toUInt8(0)),
             uniqExactState(tool), uniqExactState(server), groupUniqArrayState(tool), groupUniqArrayState(server),
             sumState(toUInt64(300)), sumState(toUInt64(resp))
      FROM (
        SELECT toDateTime(${Math.floor(from / 1000)} + intDiv(number, ${n}) % ${hours} * 3600) AS hour,
               concat(${prefix}, '-', toString(${c0} + number % ${n})) AS client_id,
               generateUUIDv4() AS id,
               arrayElement(${TOOLS}, (${c0} + number % ${n} + intDiv(number, ${n * hours}) % 2) % 5 + 1) AS tool,
               concat(${prefix}, '-srv-', toString(intDiv(number, ${n * hours}) % 2)) AS server,
               1000 + number % 3000 AS resp
        FROM numbers(${n * hours * CALLS})
      )
      GROUP BY hour, client_id`);
  }
}

async function main() {
  const tag = `bd${suffix()}`;
  const db = `bench_detect_${tag}`;
  const out = `${REPO_ROOT}.local/bench-detect-${tag}`;
  mkdirSync(out, { recursive: true });
  const k = kafka();
  const admin = k.admin();
  await admin.connect();
  const topics = { events: `bench.${tag}.events`, dlq: `bench.${tag}.dlq`, alerts: `bench.${tag}.alerts` };
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: topics.events, numPartitions: 6, replicationFactor: 1 },
      { topic: topics.dlq, numPartitions: 1, replicationFactor: 1 },
      { topic: topics.alerts, numPartitions: 3, replicationFactor: 1 },
    ],
  });
  await run(process.execPath, [`${REPO_ROOT}packages/clickhouse/dist/src/migrate.js`], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, MCP_AUDIT_CLICKHOUSE_DATABASE: db },
  });
  const user = need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER');
  const password = need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD');
  const ch = createClickHouse({
    url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    username: user,
    password,
    database: db,
    requestTimeoutMs: 600_000,
  });
  const base = {
    MCP_AUDIT_CLICKHOUSE_URL: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    MCP_AUDIT_CLICKHOUSE_DATABASE: db,
    MCP_AUDIT_CLICKHOUSE_WRITER_USER: user,
    MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD: password,
    MCP_AUDIT_CLICKHOUSE_ANALYST_USER: user,
    MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD: password,
    MCP_AUDIT_KAFKA_BROKERS: env.MCP_AUDIT_KAFKA_BROKERS ?? '127.0.0.1:9092',
  };
  const services: ServiceProcess[] = [];
  const producer = k.producer({ idempotent: true, allowAutoTopicCreation: false });
  await producer.connect();
  const collector = k.consumer({ groupId: `bench-collect-${tag}` });
  try {
    console.log(`machine: 2 cores shared with the stack; ${CLIENTS} clients, database ${db}`);
    // ---- 1. baselines for CLIENTS x 28 days
    const asOf = Math.floor(Date.now() / HOUR) * HOUR;
    let t = Date.now();
    await seed(ch, tag, asOf - DAYS * 24 * HOUR);
    const [rows] = await ch.query<{ n: string; c: string }>(
      sql`SELECT count() AS n, uniqExact(client_id) AS c FROM events_hourly`,
    );
    console.log(
      `seeded events_hourly: ${rows?.n} rows for ${rows?.c} clients (${CALLS} calls/hour) in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );
    const configFile = `${out}/detector-config.json`;
    writeFileSync(configFile, '{}\n');
    // What events_hourly_touched_mv (migration 014) writes when events arrive in their hour: the
    // seeding wrote events_hourly directly, so it touches the same (client, hour) pairs itself,
    // stamped a minute into their hour (the finalizer's first run reads all of events_hourly anyway;
    // its later runs scan this table).
    t = Date.now();
    await ch.command(sql`
      INSERT INTO events_hourly_touched SELECT hour, client_id, hour + 60 FROM events_hourly GROUP BY hour, client_id`);
    console.log(`touched ${rows?.n} client-hours in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const baselines = async (what: string) => {
      const t1 = Date.now();
      const b = await run(
        process.execPath,
        [
          ...BASELINE_NODE_ARGS,
          `${REPO_ROOT}services/detector/dist/src/cli.js`,
          'baselines',
          '--as-of',
          new Date(asOf).toISOString(),
          '--config',
          configFile,
        ],
        { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...base }, maxBuffer: 16 * 1024 * 1024 },
      );
      console.log(
        `baselines for ${CLIENTS} clients x ${DAYS} days${what}: ${((Date.now() - t1) / 1000).toFixed(1)} s wall (cli) ${b.stdout.trim()}`,
      );
    };
    // 1. Right after migration 014 (or a first start): every client-hour is finalized once.
    await baselines(', first run (finalizes all 28 days)');
    // 2. The daily run: the finalizer has kept up (nothing pending but what its margin holds back).
    await baselines('');
    // 3. The daily run when the last hour's events arrived after the finalizer's last run (late):
    //    that hour is finalized for every client first.
    await ch.command(sql`
      INSERT INTO events_hourly_touched
      SELECT hour, client_id, now() FROM events_hourly WHERE hour = ${new Date(asOf - HOUR)} GROUP BY hour, client_id`);
    await baselines(', the last hour finalized first');
    if (ONLY_BASELINES) return;

    // ---- services
    services.push(
      startService(
        'ingester',
        {
          ...base,
          MCP_AUDIT_REDACTION_KEY: env.MCP_AUDIT_REDACTION_KEY ?? 'bench-redaction-key-0123456789',
          MCP_AUDIT_EVENTS_TOPIC: topics.events,
          MCP_AUDIT_DLQ_TOPIC: topics.dlq,
          MCP_AUDIT_INGESTER_GROUP_ID: `bench-ingester-${tag}`,
          MCP_AUDIT_INGESTER_PORT: '0',
        },
        `bench-${tag}`,
      ),
    );
    const detector = startService(
      'detector',
      {
        ...base,
        MCP_AUDIT_EVENTS_TOPIC: topics.events,
        MCP_AUDIT_ALERTS_TOPIC: topics.alerts,
        MCP_AUDIT_DETECTOR_GROUP_ID: `bench-detector-${tag}`,
        MCP_AUDIT_DETECTOR_PORT: '0',
        MCP_AUDIT_DETECTOR_CONFIG: configFile,
        MCP_AUDIT_LOG_LEVEL: 'warn',
        // BENCH_DETECTOR_BASELINE_JOB=false: no baseline job in the detector (its start-up catch-up
        // computes the version as of 00:00 UTC for every client while the load runs).
        ...(process.env.BENCH_DETECTOR_BASELINE_JOB
          ? { MCP_AUDIT_DETECTOR_BASELINE_JOB: process.env.BENCH_DETECTOR_BASELINE_JOB }
          : {}),
      },
      `bench-${tag}`,
    );
    services.push(detector);
    // Its log is at warn (no "listening" line): the port it got is read from /proc.
    const [port] = await listeningPortsOfPid(detector.child.pid!);
    const health = async () =>
      (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { status: string; clients?: number };
    await waitFor(async () => (await health()).status === 'ok', {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: 'detector healthy',
    });
    const atStart = rss(detector.child.pid!);
    console.log(`detector after start-up: RSS ${mb(atStart.rss)}`);

    // ---- alerts
    const arrived = new Map<string, number>();
    const all: string[] = [];
    await collector.connect();
    await collector.subscribe({ topic: topics.alerts, fromBeginning: true });
    await collector.run({
      eachMessage: async ({ message }) => {
        const m = JSON.parse(message.value!.toString()) as {
          type: string;
          dedup_key: string;
          client_id: string;
          detector: string;
        };
        if (m.type !== 'alert') return;
        all.push(`${m.detector}`);
        if (m.detector === 'auth_burst' && !arrived.has(m.client_id)) arrived.set(m.client_id, Date.now());
      },
    });

    // ---- 2. background load + injected bursts
    const event = (c: number, ts: number, fail = false) => ({
      schema_version: 1,
      event_id: randomUUID(),
      ts: new Date(ts).toISOString(),
      kind: fail ? 'auth' : 'tool_call',
      source: { type: 'gateway', id: `${tag}-gw-${c % 4}`, version: '1.0.0' },
      client: {
        id: `${tag}-${c}`,
        ip: `10.${(c >> 16) & 255}.${(c >> 8) & 255}.${c & 255}`,
        session_id: `${tag}-s-${c}`,
      },
      server: { name: `${tag}-srv-${c % 2}`, transport: 'http' },
      method: fail ? 'initialize' : 'tools/call',
      ...(fail ? {} : { tool: { name: TOOLS[c % 5]! } }),
      outcome: fail ? 'auth_failed' : 'ok',
      auth: { method: 'api_key', result: fail ? 'failure' : 'success' },
      duration_ms: 40,
      request_bytes: 300,
      response_bytes: 1500,
    });
    const injected = new Map<string, number>();
    let next = 0;
    let produced = 0;
    let nextInject = Date.now() + 20_000;
    let victim = 0;
    const t0 = Date.now();
    const tickMs = 250;
    while (Date.now() - t0 < SECONDS * 1000) {
      const due = Math.floor(((Date.now() - t0) / 1000) * RATE) - produced;
      if (due > 0) {
        const now = Date.now();
        const msgs = Array.from({ length: due }, () => {
          const c = next++ % CLIENTS;
          return { key: eventKeyFor(`${tag}-${c}`), value: JSON.stringify(event(c, now)) };
        });
        // A stalled loop (a loaded machine) makes `due` large: one send of it would exceed the
        // broker's message.max.bytes.
        for (let i = 0; i < msgs.length; i += 500)
          await producer.send({ topic: topics.events, acks: -1, messages: msgs.slice(i, i + 500) });
        produced += due;
      }
      if (Date.now() >= nextInject) {
        const c = (victim++ * 7919) % CLIENTS;
        const now = Date.now();
        await producer.send({
          topic: topics.events,
          acks: -1,
          messages: Array.from({ length: 12 }, (_, i) => ({
            key: eventKeyFor(`${tag}-${c}`),
            value: JSON.stringify(event(c, now + i, true)),
          })),
        });
        injected.set(`${tag}-${c}`, Date.now());
        nextInject += INJECT_EVERY_MS;
      }
      await new Promise((r) => setTimeout(r, tickMs));
    }
    const elapsed = (Date.now() - t0) / 1000;
    console.log(
      `background: ${produced} events for ${CLIENTS} clients in ${elapsed.toFixed(0)} s = ${(produced / elapsed).toFixed(0)} events/s; ${injected.size} bursts injected`,
    );
    await waitFor(() => [...injected.keys()].every((c) => arrived.has(c)), {
      timeoutMs: 180_000,
      intervalMs: 500,
      what: `alerts for all ${injected.size} bursts (${arrived.size} so far)`,
    }).catch((err: unknown) => console.log(`NOTE: ${(err as Error).message}`));
    const delays = [...injected].filter(([c]) => arrived.has(c)).map(([c, at]) => arrived.get(c)! - at);
    // In injection order, with the second of the run each burst was injected at: a slow one that
    // recurs at a fixed period points at a periodic job, one at the start at warm-up.
    console.log(
      `delays in injection order (s into the run: ms): ${[...injected]
        .map(
          ([c, at]) => `${((at - t0) / 1000).toFixed(0)}: ${arrived.has(c) ? arrived.get(c)! - at : 'none'}`,
        )
        .join(', ')}`,
    );
    const h = await health();
    const after = rss(detector.child.pid!);
    console.log(
      `detection delay (burst acked by Kafka → auth_burst alert on the alerts topic), n=${delays.length}: p50 ${q(delays, 0.5)} ms, p95 ${q(delays, 0.95)} ms, max ${Math.max(...delays)} ms`,
    );
    const active = h.clients ?? CLIENTS;
    console.log(
      `detector with ${active} active clients: RSS ${mb(after.rss)} (start-up ${mb(atStart.rss)}, +${mb(after.rss - atStart.rss)}), peak ${mb(after.hwm)}; per 10,000 active clients: ${mb(((after.rss - atStart.rss) / active) * 10_000)} above start-up, ${mb((after.rss / active) * 10_000)} total`,
    );
    const counts: Record<string, number> = {};
    for (const d of all) counts[d] = (counts[d] ?? 0) + 1;
    console.log(`alerts during the run: ${JSON.stringify(counts)}`);
  } finally {
    await collector.disconnect().catch(() => undefined);
    for (const s of services.reverse()) await s.stop();
    await producer.disconnect();
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
    await ch.command(sql`DROP DATABASE IF EXISTS ${dbIdent(db)}`).catch(() => undefined);
    await ch.close();
    await admin.disconnect();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
