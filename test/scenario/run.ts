/**
 * Runs a generated scenario through the real stack and collects the detector's alerts.
 *
 *   node test/dist/scenario/run.js [--clients 40] [--days 28] [--seed 1] [--end YYYY-MM-DD]
 *        [--out DIR] [--no-replay] [--keep] [--timeout-min 20]
 *
 * Isolation (the stack is shared): the run gets its own prefix on every client, source, server,
 * session and address, its own Kafka topics (events, DLQ, alerts) and its own ClickHouse database
 * (migrated with the real migrations), and starts its own ingester and detector processes on them.
 * The detector's periodic part keys its progress and watermark on the events table, so only a
 * database of its own lets backdated scenario windows be evaluated live. The services use the
 * local admin credentials as writer and analyst because the stack's writer/analyst users may only
 * use `mcp_audit`.
 *
 * Steps: history events → ingester → wait until stored → `cli baselines --from --to` (daily
 * versions, as the cron job would have written them) → start the detector (own consumer group,
 * from the beginning of the run's topic, scenario detector config) → evaluation week + a 2 h tail →
 * one clock event per partition after the tail (so every partition's watermark passes the end) →
 * wait until the detector's group has consumed everything, its periodic runner has closed the
 * period and alerts have been quiet for a while → alerts.jsonl, produced.json → score;
 * then `cli replay` over the evaluation week → replay.jsonl, scored and compared with live.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { Admin, Consumer, Producer } from 'kafkajs';
import { createClickHouse, dbIdent, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { eventKeyFor } from '@mcp-audit/schema';
import {
  env,
  kafka,
  need,
  REPO_ROOT,
  startService,
  waitFor,
  type ServiceProcess,
  listeningPort,
} from '../lib/index.js';
import { scenarioDetectorConfig } from './config.js';
import {
  generateScenario,
  optionsFromArgs,
  parseArgs,
  validateScenario,
  writeScenario,
  type Scenario,
  type ScenarioEvent,
  type ScenarioOptions,
} from './generate.js';
import { formatReport, parseAlertsJsonl, score, type AlertLike, type ScoreResult } from './score.js';

const run = promisify(execFile);

export interface RunOptions {
  scenario: Partial<ScenarioOptions> & { prefix: string };
  out?: string;
  replay?: boolean;
  keep?: boolean;
  timeoutMs?: number;
  /** Merged over the scenario's detector config (top-level keys; `periodic` merged one level deeper). */
  configOverrides?: Record<string, unknown>;
  /** Extra environment for the detector process. */
  detectorEnv?: Record<string, string>;
  log?: (line: string) => void;
}

export interface RunResult {
  dir: string;
  scenario: Scenario;
  live: ScoreResult;
  replay?: ScoreResult;
  /** Alerts (dedup key | window | observed | severity) in the evaluation week only live or only in replay. */
  replayDiff?: { onlyLive: string[]; onlyReplay: string[] };
  timings: Record<string, number>;
}

/** Per-run ClickHouse database, migrated with the project's migrations. */
async function createDatabase(db: string, log: (l: string) => void): Promise<ClickHouse> {
  await run(process.execPath, [`${REPO_ROOT}packages/clickhouse/dist/src/migrate.js`], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, MCP_AUDIT_CLICKHOUSE_DATABASE: db },
  });
  log(`database ${db} migrated`);
  return createClickHouse({
    url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    username: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER'),
    password: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'),
    database: db,
  });
}

function chEnv(db: string): Record<string, string> {
  const user = need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER');
  const password = need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD');
  return {
    MCP_AUDIT_CLICKHOUSE_URL: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    MCP_AUDIT_CLICKHOUSE_DATABASE: db,
    MCP_AUDIT_CLICKHOUSE_WRITER_USER: user,
    MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD: password,
    MCP_AUDIT_CLICKHOUSE_ANALYST_USER: user,
    MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD: password,
    MCP_AUDIT_KAFKA_BROKERS: env.MCP_AUDIT_KAFKA_BROKERS ?? '127.0.0.1:9092',
  };
}

async function storedCount(ch: ClickHouse): Promise<number> {
  const [r] = await ch.query<{ n: string }>(sql`SELECT uniqExact(event_id) AS n FROM events`);
  return Number(r?.n ?? 0);
}

/** How far every periodic detector has evaluated (its saved progress), epoch ms; 0 before any. */
async function periodicDoneUntil(ch: ClickHouse): Promise<number> {
  const rows = await ch.query<{ t: string }>(
    sql`SELECT max(last_end_ms) AS t FROM periodic_progress GROUP BY detector, window_ms`,
  );
  return rows.length < 5 ? 0 : Math.min(...rows.map((r) => Number(r.t)));
}

async function topicEnd(admin: Admin, topic: string): Promise<number> {
  const offs = await admin.fetchTopicOffsets(topic);
  return offs.reduce((s, o) => s + Number(o.high), 0);
}

/** Produces in ts order, batch by batch; returns the wall time at which each event id was acknowledged. */
async function produce(
  producer: Producer,
  topic: string,
  events: ScenarioEvent[],
  want: Set<string>,
  acked: Map<string, number>,
  batch = 2000,
  // NOTE: kafkajs puts one partition's share of a send into one record batch, which the broker refuses
  // above message.max.bytes (1 MiB). Events are keyed by client, and at night a batch job can own
  // most of a ts-ordered slice, so a slice is capped by bytes as if it all went to one partition.
  maxBytes = 768 * 1024,
): Promise<void> {
  let i = 0;
  while (i < events.length) {
    const messages: Array<{ key: string; value: string }> = [];
    const slice: ScenarioEvent[] = [];
    let bytes = 0;
    while (i < events.length && messages.length < batch) {
      const e = events[i]!;
      const value = JSON.stringify(e);
      const size = Buffer.byteLength(value) + 64;
      if (messages.length > 0 && bytes + size > maxBytes) break;
      messages.push({ key: eventKeyFor((e.client as { id: string }).id), value });
      slice.push(e);
      bytes += size;
      i++;
    }
    await producer.send({ topic, acks: -1, messages });
    const now = Date.now();
    for (const e of slice) if (want.has(e.event_id)) acked.set(e.event_id, now);
  }
}

/** Fingerprint of an alert for live-vs-replay comparison (the plan's "same dedup_key, window, observed, severity"). */
export const alertFingerprint = (a: AlertLike): string =>
  `${a.dedup_key}|${a.window.start}|${a.window.end}|${a.observed ?? ''}|${a.severity}`;

export async function runScenario(o: RunOptions): Promise<RunResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`[scenario] ${l}\n`));
  const timings: Record<string, number> = {};
  const t0 = Date.now();
  const lap = (name: string, since: number) => (timings[name] = Date.now() - since);

  const s = generateScenario(o.scenario);
  validateScenario(s);
  const m = s.manifest;
  const tag = m.prefix;
  const dir = resolve(o.out ?? `${REPO_ROOT}.local/scenario/${tag}`);
  mkdirSync(dir, { recursive: true });
  await writeScenario(s, dir, false);
  const configFile = join(dir, 'detector-config.json');
  const cfg = scenarioDetectorConfig(m);
  for (const [key, value] of Object.entries(o.configOverrides ?? {}))
    cfg[key] = key === 'periodic' ? { ...(cfg.periodic as object), ...(value as object) } : value;
  writeFileSync(configFile, `${JSON.stringify(cfg, null, 2)}\n`);
  lap('generate', t0);
  log(
    `${tag}: ${m.clients.length} clients, ${m.days} days, ${s.events.length} events (${m.events.history} history), ${s.labels.length} labels → ${dir}`,
  );

  const db = `scn_${tag.replace(/[^a-z0-9]/g, '_')}`;
  const k = kafka();
  const admin = k.admin();
  await admin.connect();
  const topics = { events: `scn.${tag}.events`, dlq: `scn.${tag}.dlq`, alerts: `scn.${tag}.alerts` };
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: topics.events, numPartitions: 6, replicationFactor: 1 },
      { topic: topics.dlq, numPartitions: 1, replicationFactor: 1 },
      { topic: topics.alerts, numPartitions: 3, replicationFactor: 1 },
    ],
  });
  const ch = await createDatabase(db, log);
  const producer = k.producer({ idempotent: true, allowAutoTopicCreation: false });
  await producer.connect();
  const services: ServiceProcess[] = [];
  let collector: Consumer | undefined;
  const alertsFile = join(dir, 'alerts.jsonl');
  writeFileSync(alertsFile, '');
  let lastAlertAt = Date.now();
  let alertCount = 0;

  try {
    const base = chEnv(db);
    const ingester = startService(
      'ingester',
      {
        ...base,
        MCP_AUDIT_REDACTION_KEY: env.MCP_AUDIT_REDACTION_KEY ?? 'scenario-redaction-key-0123456789',
        MCP_AUDIT_EVENTS_TOPIC: topics.events,
        MCP_AUDIT_DLQ_TOPIC: topics.dlq,
        MCP_AUDIT_INGESTER_GROUP_ID: `scn-ingester-${tag}`,
        MCP_AUDIT_INGESTER_PORT: '0',
        MCP_AUDIT_LOG_LEVEL: 'info',
      },
      `scenario-${tag}`,
    );
    services.push(ingester);

    collector = k.consumer({ groupId: `scn-collect-${tag}` });
    await collector.connect();
    await collector.subscribe({ topic: topics.alerts, fromBeginning: true });
    await collector.run({
      eachMessage: async ({ message }) => {
        if (!message.value) return;
        lastAlertAt = Date.now();
        alertCount++;
        const line = JSON.stringify({
          received_at: Date.now(),
          message: JSON.parse(message.value.toString()),
        });
        appendFileSync(alertsFile, `${line}\n`);
      },
    });

    // ---- history
    const evalStart = Date.parse(m.evalStart);
    const history = s.events.filter((e) => Date.parse(e.ts) < evalStart);
    const rest = s.events.slice(history.length);
    let t = Date.now();
    const acked = new Map<string, number>();
    await produce(producer, topics.events, history, new Set(), acked);
    lap('produceHistory', t);
    log(`history produced: ${history.length} events in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    t = Date.now();
    await waitFor(async () => (await storedCount(ch)) >= history.length, {
      timeoutMs: 15 * 60_000,
      intervalMs: 2_000,
      what: `${history.length} history events stored (DLQ holds ${await topicEnd(admin, topics.dlq)})`,
    });
    lap('ingestHistory', t);
    log(`history stored in ${((Date.now() - t) / 1000).toFixed(1)} s`);

    // ---- baselines (daily versions over the history, as the cron job would have written them)
    t = Date.now();
    const cli = `${REPO_ROOT}services/detector/dist/src/cli.js`;
    const from = new Date(Date.parse(m.start) + 7 * 86_400_000).toISOString();
    const b = await run(
      process.execPath,
      [cli, 'baselines', '--from', from, '--to', m.evalStart, '--config', configFile],
      {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? '', ...base },
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    writeFileSync(join(dir, 'baselines.out'), b.stdout);
    const lastVersion = JSON.parse(b.stdout.trim().split('\n').pop() ?? '{}') as { clients?: number };
    if (!lastVersion.clients)
      throw new Error(`the baseline version as of ${m.evalStart} covers no client: ${b.stdout.slice(-500)}`);
    lap('baselines', t);
    log(`baselines ${from} .. ${m.evalStart} computed in ${((Date.now() - t) / 1000).toFixed(1)} s`);

    // ---- the detector
    const group = `scn-detector-${tag}`;
    const detector = startService(
      'detector',
      {
        ...base,
        MCP_AUDIT_EVENTS_TOPIC: topics.events,
        MCP_AUDIT_ALERTS_TOPIC: topics.alerts,
        MCP_AUDIT_DETECTOR_GROUP_ID: group,
        MCP_AUDIT_DETECTOR_PORT: '0',
        MCP_AUDIT_DETECTOR_CONFIG: configFile,
        MCP_AUDIT_LOG_LEVEL: 'info',
        ...o.detectorEnv,
      },
      `scenario-${tag}`,
    );
    services.push(detector);
    const port = await listeningPort(detector, 'ops');
    const health = async () => {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      return (await r.json()) as {
        status: string;
        // the service kit's health: the detector's details under `detector`
        detector?: {
          periodic?: { closedUntil?: string | null; next?: Record<string, string> | null } | null;
        };
      };
    };
    await waitFor(async () => (await health()).status === 'ok', {
      timeoutMs: 60_000,
      intervalMs: 500,
      what: `the detector on port ${port} healthy (log ${detector.logFile})`,
    });
    // A periodic runner without saved progress starts at the watermark of its first tick (max event
    // time stored, less the lateness): the evaluation week must not be stored before that tick, or
    // its first hours are never evaluated (the run would race the first tick). The scenario's detector
    // config always runs the periodic detectors.
    await waitFor(
      async () => {
        const h = await health();
        // null until the lease is held and the runner exists; `next` once its first tick set the cursors
        return (h.detector?.periodic?.next ?? null) !== null;
      },
      {
        timeoutMs: 120_000,
        intervalMs: 500,
        what: `the detector's periodic runner started (log ${detector.logFile})`,
      },
    );

    // ---- evaluation week + tail, then one clock event per partition
    t = Date.now();
    const firstIds = new Set(s.labels.flatMap((l) => (l.first_event_id ? [l.first_event_id] : [])));
    await produce(producer, topics.events, rest, firstIds, acked);
    const clockAt = Date.parse(m.tailEnd) + 60_000;
    const clock = Array.from({ length: 6 }, (_, p) => ({
      partition: p,
      key: `${tag}-zz-clock`,
      value: JSON.stringify({
        schema_version: 1,
        event_id: randomUUID(),
        ts: new Date(clockAt + p).toISOString(),
        kind: 'session',
        source: { type: 'gateway', id: `${tag}-clock`, version: '1' },
        client: { id: `${tag}-zz-clock` },
        server: { name: `${tag}-clock`, transport: 'http' },
        method: 'ping',
        outcome: 'ok',
        duration_ms: 0,
        request_bytes: 0,
        response_bytes: 0,
      }),
    }));
    await producer.send({ topic: topics.events, acks: -1, messages: clock });
    lap('produceEval', t);
    log(
      `evaluation week + tail produced: ${rest.length} events in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );
    const producedAt: Record<string, number> = {};
    for (const l of s.labels) {
      if (l.first_event_id) producedAt[l.id] = acked.get(l.first_event_id)!;
      else {
        const firstAfter = rest.find((e) => e.ts >= l.start);
        if (firstAfter) producedAt[l.id] = acked.get(firstAfter.event_id) ?? Date.now();
      }
    }
    // NOTE: silent_source labels have no first event; their wall delay counts from the ack of the batch
    // that held the first event after the silence began (acked holds only first events, so fall back).
    writeFileSync(join(dir, 'produced.json'), `${JSON.stringify(producedAt, null, 2)}\n`);

    // ---- wait for the detector to finish the period
    t = Date.now();
    const total = s.events.length + clock.length;
    const end = m.end;
    await waitFor(
      async () => {
        if ((await storedCount(ch)) < total) return false;
        const offs = await admin.fetchOffsets({ groupId: group, topics: [topics.events] });
        const ends = await admin.fetchTopicOffsets(topics.events);
        const lag = ends.reduce((sum, e) => {
          const c = offs[0]!.partitions.find((p) => p.partition === e.partition);
          return sum + Number(e.high) - Math.max(0, Number(c?.offset ?? 0));
        }, 0);
        if (lag > 0) return false;
        const h = await health();
        if (h.detector?.periodic !== null && (await periodicDoneUntil(ch)) < Date.parse(end)) return false;
        return Date.now() - lastAlertAt > 15_000;
      },
      {
        timeoutMs: o.timeoutMs ?? 20 * 60_000,
        intervalMs: 2_000,
        what: `the detector to consume everything and close the period (log ${detector.logFile})`,
      },
    );
    lap('detect', t);
    log(
      `detector done ${((Date.now() - t) / 1000).toFixed(1)} s after the last produce; ${alertCount} alert messages`,
    );

    const parsed = parseAlertsJsonl(readFileSync(alertsFile, 'utf8'));
    const live = score({
      labels: s.labels,
      manifest: m,
      alerts: parsed.alerts,
      stateChanges: parsed.stateChanges,
      producedAt,
    });
    log(`live:\n${formatReport(live)}`);

    const result: RunResult = { dir, scenario: s, live, timings };
    if (o.replay !== false) {
      t = Date.now();
      const replayFile = join(dir, 'replay.jsonl');
      const r = await run(
        process.execPath,
        [cli, 'replay', '--from', m.evalStart, '--to', m.end, '--out', replayFile, '--config', configFile],
        { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...base }, maxBuffer: 64 * 1024 * 1024 },
      );
      writeFileSync(join(dir, 'replay.err'), r.stderr);
      lap('replay', t);
      const rp = parseAlertsJsonl(readFileSync(replayFile, 'utf8'));
      result.replay = score({
        labels: s.labels,
        manifest: m,
        alerts: rp.alerts,
        stateChanges: rp.stateChanges,
      });
      log(`replay (${((Date.now() - t) / 1000).toFixed(1)} s):\n${formatReport(result.replay)}`);
      const inWeek = (a: AlertLike) => a.window.start >= m.evalStart && a.window.end <= m.end;
      const liveSet = new Set(
        parsed.alerts
          .map((c) => c.alert)
          .filter(inWeek)
          .map(alertFingerprint),
      );
      const replaySet = new Set(
        rp.alerts
          .map((c) => c.alert)
          .filter(inWeek)
          .map(alertFingerprint),
      );
      result.replayDiff = {
        onlyLive: [...liveSet].filter((x) => !replaySet.has(x)).sort(),
        onlyReplay: [...replaySet].filter((x) => !liveSet.has(x)).sort(),
      };
      log(
        `live vs replay (windows inside the evaluation week): ${liveSet.size} live, ${replaySet.size} replay, ` +
          `${result.replayDiff.onlyLive.length} only live, ${result.replayDiff.onlyReplay.length} only replay`,
      );
      for (const x of result.replayDiff.onlyLive.slice(0, 20)) log(`  only live:   ${x}`);
      for (const x of result.replayDiff.onlyReplay.slice(0, 20)) log(`  only replay: ${x}`);
    }
    timings.total = Date.now() - t0;
    writeFileSync(
      join(dir, 'run.json'),
      `${JSON.stringify({ timings, topics, db, alertMessages: alertCount }, null, 2)}\n`,
    );
    return result;
  } finally {
    await collector?.disconnect().catch(() => undefined);
    for (const svc of services.reverse()) await svc.stop();
    await producer.disconnect();
    if (!o.keep) {
      await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
      await ch.command(sql`DROP DATABASE IF EXISTS ${dbIdent(db)}`).catch(() => undefined);
    } else log(`kept database ${db} and topics ${Object.values(topics).join(', ')}`);
    await ch.close();
    await admin.disconnect();
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    console.log(
      'usage: run [--clients 40] [--days 28] [--seed 1] [--end YYYY-MM-DD] [--prefix scnXXXX] [--out DIR] [--no-replay] [--keep] [--timeout-min 20]',
    );
    return;
  }
  const scenario = optionsFromArgs({ prefix: `scn${randomBytes(4).toString('hex')}`, ...args });
  const r = await runScenario({
    scenario,
    ...(args.out ? { out: args.out } : {}),
    replay: args['no-replay'] !== 'true',
    keep: args.keep === 'true',
    ...(args['timeout-min'] ? { timeoutMs: Number(args['timeout-min']) * 60_000 } : {}),
  });
  console.log(formatReport(r.live));
  console.log(
    JSON.stringify({
      dir: r.dir,
      timings: r.timings,
      replayDiff: r.replayDiff && {
        onlyLive: r.replayDiff.onlyLive.length,
        onlyReplay: r.replayDiff.onlyReplay.length,
      },
    }),
  );
  process.exit(r.live.pass ? 0 : 1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(2);
  });
}
