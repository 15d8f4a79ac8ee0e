/**
 * npm run bench:soak — the whole pipeline under steady traffic for BENCH_SOAK_MINUTES (default 10):
 * does memory stay flat and do the consumers keep up?
 *
 * Stack (all real, compiled main.js, against the test stack's Kafka and ClickHouse): a database of its
 * own (migrated), fresh topics, the collector, ingester, detector (streaming and periodic), notifier
 * (to the local Slack/PagerDuty/webhook receivers), the api, and the gateway in front of
 * server-everything (Streamable HTTP) with its Kafka sink on the same events topic.
 *
 * 1. Ceiling: for BENCH_SOAK_PROBE_SECONDS (default 20) the collector (4 closed-loop senders, NDJSON
 *    batches of BENCH_SOAK_BATCH events, default 100) and the gateway (an SDK client, 8 calls in
 *    flight, `get-sum`) are driven as fast as they answer, at the same time, with every service
 *    running. The two rates are the measured ceiling.
 * 2. Soak: half of each (or BENCH_SOAK_COLLECTOR_RATE events/s, BENCH_SOAK_GATEWAY_RATE calls/s),
 *    paced open-loop (a tick every 100 ms sends what is due; at most 64 requests in flight each, a
 *    tick that finds them all busy is counted as missed), and the api queried every 5 s.
 * 3. Every minute: traffic sent and answered, consumer lag (ingester and detector on the events
 *    topic, notifier on the alerts topic), and of every service its RSS (/proc) and event-loop delay
 *    p99 / max over the minute (the service kit's /metrics: prom-client's monitorEventLoopDelay,
 *    reset at each scrape).
 *
 * Verdict (the slope test). Samples of the first quarter of the run (at least the first minute) are
 * warm-up and left out; on the rest a least-squares line is fitted per series.
 *   - memory flat: for every service, RSS slope × 60 min ≤ max(32 MiB, 25% of its median RSS), i.e.
 *     at the fitted rate it would not grow by more than a quarter in an hour;
 *   - lag flat: for each consumer, lag slope × 60 min ≤ 10 s of the events topic's traffic, and the
 *     last lag ≤ 10 s of traffic (at least 1,000 messages in both);
 *   - no errors: every collector request answered 200, every gateway call answered (ceiling probe
 *     included).
 * Prints PASS or FAIL per series and overall; exits 2 on FAIL (1 when the run itself broke).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Admin } from 'kafkajs';
import { createClickHouse, dbIdent, sql } from '@mcp-audit/clickhouse';
import {
  REPO_ROOT,
  brokers,
  createTestTopics,
  env,
  kafka,
  listeningPortsOfPid,
  makeEvent,
  need,
  portAnswering,
  rng,
  startService,
  suffix,
  waitFor,
  writeTokensFile,
  type ServiceProcess,
} from '../lib/index.js';
import { startApi, writeApiKeys } from '../lib/browser.js';
import { createBenchClientFetch, startEverythingHttp, startGatewayProcess } from '../lib/gateway-proc.js';
import {
  ROUTING_KEY,
  WEBHOOK_SECRET,
  createAlertTopics,
  metricValue,
  notifierEnv,
  startReceivers,
  writeRoutes,
} from '../lib/receivers/index.js';

const MINUTES = Number(process.env.BENCH_SOAK_MINUTES ?? 10);
const PROBE_S = Number(process.env.BENCH_SOAK_PROBE_SECONDS ?? 20);
const BATCH = Number(process.env.BENCH_SOAK_BATCH ?? 100);
const SAMPLE_MS = Number(process.env.BENCH_SOAK_SAMPLE_MS ?? 60_000);
const MAX_IN_FLIGHT = 64;
const TICK_MS = 100;
if (!(MINUTES > 0) || !(PROBE_S > 0) || !(BATCH > 0) || !(SAMPLE_MS > 0))
  throw new Error(
    'BENCH_SOAK_MINUTES, BENCH_SOAK_PROBE_SECONDS, BENCH_SOAK_BATCH and BENCH_SOAK_SAMPLE_MS must be positive numbers',
  );

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssOf(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) * 1024;
}

/** The port of a process that serves the service kit's /metrics (its ops port). */
async function metricsPort(pid: number): Promise<number> {
  return waitFor(
    async () => {
      for (const port of await listeningPortsOfPid(pid)) {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
        if (res?.ok && (await res.text()).includes('process_resident_memory_bytes')) return port;
      }
      return undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500, what: `the /metrics port of process ${pid}` },
  );
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? 0;

/** Messages a consumer group has not committed yet, summed over the topic's partitions. */
async function lagOf(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [high, committed] = await Promise.all([
    admin.fetchTopicOffsets(topic),
    admin.fetchOffsets({ groupId, topics: [topic] }),
  ]);
  const done = new Map(
    (committed[0]?.partitions ?? []).map((p) => [p.partition, Math.max(0, Number(p.offset))]),
  );
  return high.reduce((s, p) => s + Math.max(0, Number(p.high) - (done.get(p.partition) ?? 0)), 0);
}

const topicEnd = async (admin: Admin, topic: string) =>
  (await admin.fetchTopicOffsets(topic)).reduce((s, p) => s + Number(p.high), 0);

interface Watched {
  name: string;
  pid: number;
  metricsUrl: string;
  rss: number[];
  loopP99: number[];
  loopMax: number[];
}

/** Open-loop traffic: `due()` units per tick, at most MAX_IN_FLIGHT operations at once. */
class Pacer {
  sent = 0;
  ok = 0;
  failed = 0;
  missed = 0;
  inFlight = 0;
  lastError = '';
  lat: number[] = [];
  private timer?: NodeJS.Timeout;
  private carry = 0;
  constructor(
    private readonly perSecond: number,
    private readonly unit: number,
    private readonly op: () => Promise<void>,
  ) {}
  start() {
    this.timer = setInterval(() => {
      this.carry += (this.perSecond * TICK_MS) / 1000 / this.unit;
      while (this.carry >= 1) {
        this.carry -= 1;
        if (this.inFlight >= MAX_IN_FLIGHT) {
          this.missed++;
          continue;
        }
        this.inFlight++;
        this.sent++;
        const t0 = performance.now();
        this.op()
          .then(
            () => {
              this.ok++;
              this.lat.push(performance.now() - t0);
            },
            (err: unknown) => {
              this.failed++;
              this.lastError = (err as Error).message;
            },
          )
          .finally(() => this.inFlight--);
      }
    }, TICK_MS);
  }
  async stop() {
    clearInterval(this.timer);
    await waitFor(() => this.inFlight === 0, { timeoutMs: 60_000, what: 'requests in flight' });
  }
  /** Counters since the last call, and the latency quantiles of that interval. */
  take() {
    const lat = this.lat.sort((a, b) => a - b);
    const q = (p: number) => lat[Math.min(lat.length - 1, Math.ceil(p * lat.length) - 1)] ?? 0;
    const out = { ok: this.ok, failed: this.failed, missed: this.missed, p50: q(0.5), p99: q(0.99) };
    this.ok = 0;
    this.failed = 0;
    this.missed = 0;
    this.lat = [];
    return out;
  }
}

async function main() {
  const tag = `soak-${suffix()}`;
  const k = kafka();
  const admin = k.admin();
  await admin.connect();
  const topics = await createTestTopics(admin, 'soak');
  const alertTopics = await createAlertTopics(admin, 'soak');
  const db = `mcp_audit_soak_${suffix()}`;
  const chUrl = env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
  const adminUser = need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER');
  const adminPassword = need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD');
  const chAdmin = createClickHouse({ url: chUrl, username: adminUser, password: adminPassword });
  // The database of its own, with the project's migrations; every service below uses it (admin
  // credentials for the roles: the roles' grants name the shared database).
  await new Promise<void>((resolve, reject) => {
    const m = spawn(process.execPath, [`${REPO_ROOT}packages/clickhouse/dist/src/migrate.js`], {
      env: { ...process.env, ...env, MCP_AUDIT_CLICKHOUSE_DATABASE: db },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    m.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    m.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`migrate exited ${code}: ${err}`))));
  });
  const ch = {
    MCP_AUDIT_KAFKA_BROKERS: brokers.join(','),
    MCP_AUDIT_CLICKHOUSE_URL: chUrl,
    MCP_AUDIT_CLICKHOUSE_DATABASE: db,
    MCP_AUDIT_CLICKHOUSE_WRITER_USER: adminUser,
    MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD: adminPassword,
    MCP_AUDIT_CLICKHOUSE_ANALYST_USER: adminUser,
    MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD: adminPassword,
  };
  const quiet = { MCP_AUDIT_LOG_LEVEL: 'warn' };
  const redactionKey = env.MCP_AUDIT_REDACTION_KEY ?? 'soak-redaction-key-0123456789';
  const services: ServiceProcess[] = [];
  const stops: Array<() => Promise<unknown>> = [];
  const watched: Watched[] = [];
  const rx = await startReceivers({ routingKey: ROUTING_KEY, webhookSecret: WEBHOOK_SECRET });
  const clientFetch = createBenchClientFetch();
  const clients: Client[] = [];
  let verdictOk = true;

  try {
    const groups = { ingester: `${tag}-ingester`, detector: `${tag}-detector`, notifier: `${tag}-notifier` };
    const start = (name: Parameters<typeof startService>[0], e: Record<string, string>) => {
      const svc = startService(name, e, tag);
      services.push(svc);
      stops.push(() => svc.stop());
      return svc;
    };
    const ingester = start('ingester', {
      ...ch,
      ...quiet,
      MCP_AUDIT_REDACTION_KEY: redactionKey,
      MCP_AUDIT_EVENTS_TOPIC: topics.events,
      MCP_AUDIT_DLQ_TOPIC: topics.dlq,
      MCP_AUDIT_INGESTER_GROUP_ID: groups.ingester,
      MCP_AUDIT_INGESTER_PORT: '0',
    });
    const detector = start('detector', {
      ...ch,
      ...quiet,
      MCP_AUDIT_EVENTS_TOPIC: topics.events,
      MCP_AUDIT_ALERTS_TOPIC: alertTopics.alerts,
      MCP_AUDIT_DETECTOR_GROUP_ID: groups.detector,
      MCP_AUDIT_DETECTOR_FROM_BEGINNING: 'true',
      MCP_AUDIT_DETECTOR_PORT: '0',
    });
    const notifier = start(
      'notifier',
      notifierEnv(rx, alertTopics, groups.notifier, writeRoutes({ base: rx.base }), {
        ...ch,
        ...quiet,
      }),
    );
    const { file: tokensFile, tokens } = writeTokensFile([{ sourceId: `${tag}-col`, scopes: ['ingest'] }]);
    const collector = start('collector', {
      ...ch,
      ...quiet,
      MCP_AUDIT_REDACTION_KEY: redactionKey,
      MCP_AUDIT_EVENTS_TOPIC: topics.events,
      MCP_AUDIT_DLQ_TOPIC: topics.dlq,
      MCP_AUDIT_COLLECTOR_PORT: '0',
      MCP_AUDIT_COLLECTOR_TOKENS_FILE: tokensFile,
      MCP_AUDIT_COLLECTOR_RATE_LIMIT_PER_MINUTE: '1000000',
    });
    const apiKeys = writeApiKeys([{ id: 'soak-analyst', scopes: ['analyst'] }]);
    const api = await startApi({
      keysFile: apiKeys.file,
      alertsTopic: alertTopics.alerts,
      tag,
      extra: {
        MCP_AUDIT_CLICKHOUSE_DATABASE: db,
        MCP_AUDIT_CLICKHOUSE_API_USER: adminUser,
        MCP_AUDIT_CLICKHOUSE_API_PASSWORD: adminPassword,
        MCP_AUDIT_CLICKHOUSE_API_READER_USER: adminUser,
        MCP_AUDIT_CLICKHOUSE_API_READER_PASSWORD: adminPassword,
      },
    });
    stops.push(() => api.svc.stop());
    const everything = await startEverythingHttp();
    stops.push(async () => void everything.child.kill('SIGINT'));
    const gateway = await startGatewayProcess({
      tag,
      eventsTopic: topics.events,
      upstreams: [{ name: 'everything', transport: 'http', url: everything.url }],
    });
    stops.unshift(() => gateway.stop());

    const collectorPort = await portAnswering(collector.child.pid!, '/health');
    for (const [name, pid] of [
      ['collector', collector.child.pid!],
      ['ingester', ingester.child.pid!],
      ['detector', detector.child.pid!],
      ['notifier', notifier.child.pid!],
      ['api', api.svc.pid],
      ['gateway', gateway.child.pid!],
    ] as const) {
      const port = await metricsPort(pid);
      watched.push({
        name,
        pid,
        metricsUrl: `http://127.0.0.1:${port}/metrics`,
        rss: [],
        loopP99: [],
        loopMax: [],
      });
    }

    // ---- traffic
    const r = rng(7);
    let seq = 0;
    const token = tokens[0]!.token;
    const postBatch = async () => {
      const body = Array.from({ length: BATCH }, () =>
        JSON.stringify(
          makeEvent(r, seq++, {
            sourceId: `${tag}-col`,
            clientPrefix: `${tag}-c`,
            clients: 200,
            spreadMs: 60_000,
          }),
        ),
      ).join('\n');
      const res = await fetch(`http://127.0.0.1:${collectorPort}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
        body,
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`collector answered ${res.status}: ${text.slice(0, 300)}`);
    };
    for (let i = 0; i < 4; i++) {
      const c = new Client({ name: `soak-${i}`, version: '1.0.0' });
      await c.connect(
        clientFetch.transport(`${gateway.base}/mcp/everything`, { authorization: `Bearer ${gateway.key}` }),
      );
      clients.push(c);
    }
    let rr = 0;
    const call = async () => {
      const res = await clients[rr++ % clients.length]!.callTool({
        name: 'get-sum',
        arguments: { a: 2, b: 3 },
      });
      if (res.isError) throw new Error('get-sum answered isError');
    };
    const apiQuery = async () => {
      const res = await fetch(`${api.base}/api/v1/events?limit=50`, {
        headers: { authorization: `Bearer ${apiKeys.keys['soak-analyst']}` },
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`api answered ${res.status}`);
    };

    // ---- 1. ceiling
    const load0 = os.loadavg();
    console.log(
      `soak ${tag}: ${os.cpus().length} CPUs, node ${process.version}, load ${load0.map((l) => l.toFixed(1)).join(' ')}; ` +
        `database ${db}, events topic ${topics.events}`,
    );
    const probeUntil = Date.now() + PROBE_S * 1000;
    let probeEvents = 0;
    let probeCalls = 0;
    let probeErrors = 0;
    let probeError = '';
    const loop = async (op: () => Promise<void>, count: () => void) => {
      while (Date.now() < probeUntil)
        await op().then(count, (err: unknown) => {
          probeErrors++;
          probeError = (err as Error).message;
        });
    };
    const probeStart = Date.now();
    await Promise.all([
      ...Array.from({ length: 4 }, () => loop(postBatch, () => (probeEvents += BATCH))),
      ...Array.from({ length: 8 }, () => loop(call, () => probeCalls++)),
    ]);
    const probeSecs = (Date.now() - probeStart) / 1000;
    if (probeErrors > 0) verdictOk = false;
    const ceiling = { events: probeEvents / probeSecs, calls: probeCalls / probeSecs };
    const rate = {
      events: Number(process.env.BENCH_SOAK_COLLECTOR_RATE ?? 0) || ceiling.events / 2,
      calls: Number(process.env.BENCH_SOAK_GATEWAY_RATE ?? 0) || ceiling.calls / 2,
    };
    console.log(
      `ceiling (${PROBE_S} s, both at once, every service running): collector ${ceiling.events.toFixed(0)} events/s ` +
        `(batches of ${BATCH}, 4 senders), gateway ${ceiling.calls.toFixed(0)} calls/s (8 in flight); ` +
        `${probeErrors} failed${probeErrors ? ` (last: ${probeError.slice(0, 200)})` : ''}\n` +
        `soak: ${rate.events.toFixed(0)} events/s to the collector, ${rate.calls.toFixed(0)} calls/s through the gateway, ` +
        `the api queried every 5 s, for ${MINUTES} min, a sample every ${SAMPLE_MS / 1000} s`,
    );
    // Let the consumers catch up with the probe before the first sample.
    await waitFor(
      async () =>
        (await lagOf(admin, groups.ingester, topics.events)) < 1000 &&
        (await lagOf(admin, groups.detector, topics.events)) < 1000,
      { timeoutMs: 300_000, intervalMs: 1000, what: 'the consumers caught up with the ceiling probe' },
    );

    // ---- 2. soak
    const col = new Pacer(rate.events, BATCH, postBatch);
    const gw = new Pacer(rate.calls, 1, call);
    const apiPacer = new Pacer(0.2, 1, apiQuery);
    for (const w of watched) await fetch(w.metricsUrl).then((res) => res.text()); // reset the loop-delay histograms
    col.start();
    gw.start();
    apiPacer.start();
    const lag = { ingester: [] as number[], detector: [] as number[], notifier: [] as number[] };
    const topicRate: number[] = [];
    const minutes: number[] = [];
    let end0 = await topicEnd(admin, topics.events);
    const t0 = Date.now();
    const samples = Math.max(1, Math.round((MINUTES * 60_000) / SAMPLE_MS));
    console.log(
      '\n| min | collector ev/s (failed, missed) | gateway calls/s, p50/p99 ms (failed, missed) | events topic msg/s | lag ingester / detector / notifier | api (failed) |',
    );
    console.log('|---|---|---|---|---|---|');
    const rssRows: string[] = [];
    for (let i = 1; i <= samples; i++) {
      await sleep(t0 + i * SAMPLE_MS - Date.now());
      const secs = SAMPLE_MS / 1000;
      const c = col.take();
      const g = gw.take();
      const a = apiPacer.take();
      const end = await topicEnd(admin, topics.events);
      const tr = (end - end0) / secs;
      end0 = end;
      const [li, ld, ln] = await Promise.all([
        lagOf(admin, groups.ingester, topics.events),
        lagOf(admin, groups.detector, topics.events),
        lagOf(admin, groups.notifier, alertTopics.alerts),
      ]);
      lag.ingester.push(li);
      lag.detector.push(ld);
      lag.notifier.push(ln);
      topicRate.push(tr);
      const m = (Date.now() - t0) / 60_000;
      minutes.push(m);
      const cells: string[] = [];
      for (const w of watched) {
        const text = await fetch(w.metricsUrl).then((res) => res.text());
        w.rss.push(rssOf(w.pid));
        w.loopP99.push(metricValue(text, 'mcp_audit_nodejs_eventloop_lag_p99_seconds') * 1000);
        w.loopMax.push(metricValue(text, 'mcp_audit_nodejs_eventloop_lag_max_seconds') * 1000);
        cells.push(
          `${(w.rss.at(-1)! / MiB).toFixed(0)} MiB ${w.loopP99.at(-1)!.toFixed(1)}/${w.loopMax.at(-1)!.toFixed(0)} ms`,
        );
      }
      console.log(
        `| ${m.toFixed(1)} | ${((c.ok * BATCH) / secs).toFixed(0)} (${c.failed}, ${c.missed}) | ` +
          `${(g.ok / secs).toFixed(0)}, ${g.p50.toFixed(1)}/${g.p99.toFixed(1)} (${g.failed}, ${g.missed}) | ` +
          `${tr.toFixed(0)} | ${li} / ${ld} / ${ln} | ${a.ok} (${a.failed}) |`,
      );
      rssRows.push(`| ${m.toFixed(1)} | ${cells.join(' | ')} |`);
      if (c.failed > 0 || g.failed > 0) {
        verdictOk = false;
        console.log(`  errors: collector ${col.lastError || '-'}; gateway ${gw.lastError || '-'}`);
      }
    }
    await Promise.all([col.stop(), gw.stop(), apiPacer.stop()]);
    console.log(
      '\nRSS, and event-loop delay p99/max in the interval, per service:\n' +
        `| min | ${watched.map((w) => w.name).join(' | ')} |\n|---|${watched.map(() => '---|').join('')}`,
    );
    for (const row of rssRows) console.log(row);

    // ---- 3. verdict
    const skip = Math.max(1, Math.ceil(minutes.length / 4));
    const xs = minutes.slice(skip);
    const trafficPerS = median(topicRate.slice(skip));
    const lagLimit = Math.max(1000, trafficPerS * 10);
    console.log(
      `\nverdict over minutes ${xs[0]?.toFixed(1) ?? '-'}..${xs.at(-1)?.toFixed(1) ?? '-'} ` +
        `(the first ${skip} sample(s) are warm-up):`,
    );
    if (xs.length < 2) {
      console.log('  too few samples after warm-up for a slope (run at least 3 minutes): no verdict');
      verdictOk = false;
    }
    for (const w of watched) {
      const ys = w.rss.slice(skip).map((b) => b / MiB);
      const perHour = slope(xs, ys) * 60;
      const limit = Math.max(32, 0.25 * median(ys));
      const ok = perHour <= limit;
      verdictOk &&= ok;
      console.log(
        `  ${ok ? 'PASS' : 'FAIL'} memory ${w.name}: RSS ${Math.min(...ys).toFixed(0)}–${Math.max(...ys).toFixed(0)} MiB, ` +
          `slope ${perHour >= 0 ? '+' : ''}${perHour.toFixed(1)} MiB/h (limit ${limit.toFixed(0)}); ` +
          `event-loop delay p99 ≤ ${Math.max(...w.loopP99.slice(skip)).toFixed(1)} ms, max ${Math.max(...w.loopMax.slice(skip)).toFixed(0)} ms`,
      );
    }
    for (const [name, ys0] of Object.entries(lag)) {
      const ys = ys0.slice(skip);
      const perHour = slope(xs, ys) * 60;
      const last = ys.at(-1) ?? 0;
      const ok = perHour <= lagLimit && last <= lagLimit;
      verdictOk &&= ok;
      console.log(
        `  ${ok ? 'PASS' : 'FAIL'} lag ${name}: last ${last}, max ${Math.max(...ys)}, slope ${perHour >= 0 ? '+' : ''}${perHour.toFixed(0)} msgs/h ` +
          `(limit ${lagLimit.toFixed(0)}: 10 s of the topic's ${trafficPerS.toFixed(0)} msgs/s)`,
      );
    }
    const load1 = os.loadavg();
    console.log(
      `\n${verdictOk ? 'PASS' : 'FAIL'}: memory and lag ${verdictOk ? 'flat' : 'NOT flat (or errors)'}; load ${load1.map((l) => l.toFixed(1)).join(' ')} at the end`,
    );
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    for (const stop of stops) await stop().catch(() => undefined);
    clientFetch.close();
    await rx.close();
    await admin
      .deleteTopics({ topics: [topics.events, topics.dlq, alertTopics.alerts, alertTopics.dlq] })
      .catch(() => undefined);
    await admin.disconnect();
    await chAdmin.command(sql`DROP DATABASE IF EXISTS ${dbIdent(db)}`).catch(() => undefined);
    await chAdmin.close();
  }
  return verdictOk;
}

main().then(
  (ok) => process.exit(ok ? 0 : 2),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
