/**
 * Issue 16: the detector, notifier and api as services on the ClickHouse cluster profile
 * (test/lib/cluster.ts: ch1 + ch2 = shard 1, ch3 = shard 2), each given the cluster's URL and its
 * own ClickHouse users, on mcp_audit in the cluster layout (replicated local tables, Distributed
 * tables). The cluster is shared with the other cluster tests and reused between runs, so the test's
 * clients are new each run, its periodic windows start where the detector says it resumes (the stored
 * progress of an earlier run, or the events' watermark), and the baseline job runs every minute (a
 * version of today computed by an earlier run is computed again, now with this run's client).
 *
 * What must come out of the cluster:
 * - the baseline job (run by the real detector at start) computes client H's baseline from the
 *   cluster's events_hourly: 8 days, 192 active hours, its worst hour of 14 failed logins;
 * - the streaming auth_burst detector judges H's live burst against that baseline: its threshold is
 *   15 (14 + 1), not the default 10 a client without a baseline gets;
 * - the periodic secret_in_args detector, resumed from the cluster's stored progress or watermark,
 *   raises for the two calls of client S carrying one token;
 * - the notifier delivers both to the webhook and records the deliveries in alert_deliveries;
 * - the api lists both alerts, shows one with its transitions, deliveries and sample events, finds
 *   S's events, and acknowledges an alert (a transition written through the Distributed table).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin, Producer } from 'kafkajs';
import { createClickHouse, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import {
  brokers,
  createTestTopics,
  env as stack,
  ingesterEnv,
  listeningPort,
  makeEvent,
  need,
  produceEvents,
  rng,
  startService,
  suffix,
  useStackClients,
  waitFor,
  type ServiceProcess,
} from '../lib/index.js';
import { startApi, writeApiKeys } from '../lib/browser.js';
import { startClickHouseCluster, type ClickHouseClusterInfo } from '../lib/cluster.js';
import {
  createAlertTopics,
  deliveryRows,
  notifierEnv,
  startReceivers,
  writeRoutes,
  ROUTING_KEY,
  WEBHOOK_SECRET,
} from '../lib/receivers/index.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

let admin: Admin;
let producer: Producer;
useStackClients((c) => ({ admin, producer } = c));

let cluster: ClickHouseClusterInfo;
let ch: ClickHouse;

before(async () => {
  cluster = startClickHouseCluster();
  ch = createClickHouse({
    url: cluster.serviceUrl,
    username: need(stack, 'MCP_AUDIT_CLICKHOUSE_ANALYST_USER'),
    password: need(stack, 'MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD'),
    database: 'mcp_audit',
  });
});

after(async () => {
  await ch?.close();
});

/** What points a service at the cluster: its URL (the users are the stack's, the same on the cluster). */
const onCluster = () => ({ MCP_AUDIT_CLICKHOUSE_URL: cluster.serviceUrl });

/** A call of the one client of `prefix` at `ts` (ok unless `authFailed`). */
function call(r: () => number, i: number, tag: string, prefix: string, ts: number, authFailed = false) {
  const e = makeEvent(r, i, { sourceId: tag, clientPrefix: prefix, clients: 1 });
  const out: Record<string, unknown> = { ...e, ts: new Date(ts).toISOString() };
  if (authFailed) {
    out.outcome = 'auth_failed';
    out.http_status = 401;
    out.tool_is_error = false;
    out.auth = { method: 'api_key', result: 'failure' };
    delete out.error;
    delete out.rpc_error_code;
  }
  return out;
}

async function stored(source: string): Promise<number> {
  const [r] = await ch.query<{ n: string }>(
    sql`SELECT uniqExact(event_id) AS n FROM events WHERE source_id = ${source}`,
  );
  return Number(r?.n ?? 0);
}

const logOf = (svc: { logFile: string }) => readFileSync(svc.logFile, 'utf8');

test('cluster: the real detector, notifier and api on Distributed tables (baselines, streaming and periodic alerts, deliveries, triage)', async () => {
  // The live burst must be judged against today's baseline (as of 00:00 UTC): not across midnight.
  const sinceMidnight = Date.now() % DAY;
  if (sinceMidnight < 10 * MIN || sinceMidnight > DAY - 15 * MIN) {
    const wait = (DAY - sinceMidnight + 10 * MIN) % DAY;
    console.log(
      `waiting ${Math.round(wait / 1000)} s for 00:10 UTC (the test's events straddle no midnight)`,
    );
    await new Promise((res) => setTimeout(res, wait));
  }
  const T0 = Date.now();
  const today = T0 - (T0 % DAY);
  const tag = `clsvc-${suffix()}`;
  // makeEvent names the one client of a prefix `${prefix}-0`
  const [hPrefix, sPrefix] = [`${tag}-h`, `${tag}-s`];
  const [H, S] = [`${hPrefix}-0`, `${sPrefix}-0`];
  const r = rng(22);
  let i = 0;

  // ---- history of H: 8 whole days before today, 2 calls an hour; 14 failed logins in one hour
  const history: Record<string, unknown>[] = [];
  for (let d = 8; d >= 1; d--) {
    for (let h = 0; h < 24; h++) {
      const hour = today - d * DAY + h * HOUR;
      history.push(call(r, i++, tag, hPrefix, hour + 10 * MIN), call(r, i++, tag, hPrefix, hour + 40 * MIN));
      if (d === 3 && h === 14)
        for (let k = 0; k < 14; k++)
          history.push(call(r, i++, tag, hPrefix, hour + 20 * MIN + k * 1000, true));
    }
  }
  // NOTE: nothing of H today before its baseline is there: the detector's baseline store keeps a
  // client it asked for and did not find as absent for that version (until a restart).

  const topics = await waitFor(() => createTestTopics(admin, 'clsvc'), {
    timeoutMs: 30_000,
    intervalMs: 500,
  });
  const alertTopics = await waitFor(() => createAlertTopics(admin, 'clsvc'), {
    timeoutMs: 30_000,
    intervalMs: 500,
  });
  const rx = await startReceivers({ routingKey: ROUTING_KEY, webhookSecret: WEBHOOK_SECRET });
  const services: ServiceProcess[] = [];
  let api: Awaited<ReturnType<typeof startApi>> | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'cluster-services-'));
  try {
    await produceEvents(producer, topics.events, history);
    services.push(
      startService('ingester', ingesterEnv(topics, `e2e-clsvc-${suffix()}`, onCluster()), `${tag}`),
    );
    await waitFor(async () => (await stored(tag)) >= history.length, {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: `${history.length} history events on the cluster`,
    });

    // ---- the services, every one on the cluster
    const notifierGroup = `e2e-clsvc-notifier-${suffix()}`;
    const routes = writeRoutes({ base: rx.base, destinations: ['webhook'] });
    const notifier = startService(
      'notifier',
      { ...notifierEnv(rx, alertTopics, notifierGroup, routes), ...onCluster() },
      tag,
    );
    services.push(notifier);
    const keys = writeApiKeys([{ id: 'clsvc-analyst', scopes: ['analyst'] }]);
    api = await startApi({ keysFile: keys.file, alertsTopic: alertTopics.alerts, tag, extra: onCluster() });
    const configFile = join(dir, 'detector.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        allowedLatenessMs: 30_000,
        // Every minute: today's version again with this run's client, when an earlier run made it.
        baseline: { cron: '* * * * *' },
        // One-minute windows: the test waits out one window, not five; a day of catch-up a tick.
        periodic: { tickMs: 1_000, maxWindowsPerTick: 5_000, secretInArgs: { windowMs: MIN } },
        // The wall-clock watchdog would page for the test's own silent source; not what is tested.
        watchdog: { enabled: false },
      }),
    );
    const detector = startService(
      'detector',
      {
        ...onCluster(),
        MCP_AUDIT_CLICKHOUSE_WRITER_USER: need(stack, 'MCP_AUDIT_CLICKHOUSE_WRITER_USER'),
        MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD: need(stack, 'MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD'),
        MCP_AUDIT_CLICKHOUSE_ANALYST_USER: need(stack, 'MCP_AUDIT_CLICKHOUSE_ANALYST_USER'),
        MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD: need(stack, 'MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD'),
        MCP_AUDIT_KAFKA_BROKERS: brokers.join(','),
        MCP_AUDIT_EVENTS_TOPIC: topics.events,
        MCP_AUDIT_ALERTS_TOPIC: alertTopics.alerts,
        MCP_AUDIT_DETECTOR_GROUP_ID: `e2e-clsvc-detector-${suffix()}`,
        MCP_AUDIT_DETECTOR_PORT: '0',
        MCP_AUDIT_DETECTOR_CONFIG: configFile,
        MCP_AUDIT_LOG_LEVEL: 'info',
      },
      tag,
    );
    services.push(detector);

    // ---- the baseline job's rows for H, from the cluster's rollup
    const baseline = await waitFor(
      async () => {
        const [b] = await ch.query<{
          state: string;
          active_days: number;
          active_hours: number;
          computed_at: string;
          auth_max: number;
        }>(sql`
          SELECT state, active_days, active_hours, toUnixTimestamp(computed_at) AS computed_at,
                 auth_failures_hour_max AS auth_max
          FROM baselines FINAL
          WHERE client_id = ${H} AND kind = 'client' AND as_of = ${new Date(today)}`);
        return b;
      },
      { timeoutMs: 180_000, intervalMs: 1_000, what: `the baseline of ${H} (see ${detector.logFile})` },
    );
    // The streaming detectors judge with the versions their store last listed: wait until the run
    // that wrote H's row is complete (its log line) and the store lists a version (/health).
    const ops = `http://127.0.0.1:${await listeningPort(detector, 'ops')}`;
    await waitFor(
      async () => {
        const done = logOf(detector)
          .split('\n')
          .filter((l) => l.includes('"baselines computed"'))
          .map((l) => JSON.parse(l) as { time: string; asOf: string })
          .some(
            (x) => Date.parse(x.asOf) === today && Date.parse(x.time) >= Number(baseline.computed_at) * 1000,
          );
        const health = await (await fetch(`${ops}/health`)).text();
        return done && Number(/"baselineVersions":(\d+)/.exec(health)?.[1] ?? 0) > 0;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: "the detector's baseline store to list today's version" },
    );
    assert.equal(Number(baseline.active_days), 8);
    assert.equal(Number(baseline.active_hours), 8 * 24);
    assert.equal(Number(baseline.auth_max), 14, 'the worst hour of failed logins');
    // Where secret_in_args starts: after the stored progress, else one window before the watermark.
    const resumeAt = await waitFor(
      () => {
        for (const line of logOf(detector).split('\n')) {
          if (!line.includes('periodic detector resumes')) continue;
          const rec = JSON.parse(line) as { detector?: string; resumeAt?: string };
          if (rec.detector === 'secret_in_args') return Date.parse(rec.resumeAt!);
        }
        return undefined;
      },
      { timeoutMs: 120_000, what: `the periodic detectors to resume (${detector.logFile})` },
    );

    // ---- live: S's two calls with one token now (a window the watermark has not closed: events
    // of earlier runs or tests may have moved it up to now), H's burst of failed logins today;
    // then, once that window is past the allowed lateness, a call of H now (the watermark)
    const live: Record<string, unknown>[] = [];
    const firstCall = Date.now() - 10_000;
    const secretAt = Math.floor(firstCall / MIN) * MIN;
    assert.ok(secretAt >= resumeAt, `secret window ${new Date(secretAt).toISOString()} evaluated`);
    const token = `ghp_${suffix()}${suffix()}${suffix()}${suffix()}abcd`;
    for (const at of [firstCall, Math.min(firstCall + 2_000, secretAt + MIN - 1)])
      live.push({ ...call(r, i++, tag, sPrefix, at), args: { note: `use ${token}` } });
    const burstAt = Math.floor((Date.now() - 2 * MIN) / (5 * MIN)) * 5 * MIN + 10_000;
    for (let k = 0; k < 16; k++) live.push(call(r, i++, tag, hPrefix, burstAt + k * 5_000, true));
    await produceEvents(producer, topics.events, live);
    // Stored before the watermark moves past their window (another partition could be stored first).
    await waitFor(async () => (await stored(tag)) >= history.length + live.length, {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: 'the live events on the cluster',
    });
    await waitFor(() => Date.now() > secretAt + MIN + 32_000, {
      timeoutMs: 3 * MIN,
      intervalMs: 1_000,
      what: 'the wall clock past the secret window and the allowed lateness',
    });
    const push = call(r, i++, tag, hPrefix, Date.now());
    live.push(push);
    await produceEvents(producer, topics.events, [push]);

    type AlertRow = {
      alert_id: string;
      dedup_key: string;
      detector: string;
      client_id: string;
      observed: number;
      expected_high: number;
    };
    const alerts = await waitFor(
      async () => {
        const rows = await ch.query<AlertRow>(sql`
          SELECT alert_id, dedup_key, detector, client_id, observed, expected_high FROM alerts
          WHERE client_id IN (${H}, ${S}) AND detector IN ('auth_burst', 'secret_in_args')
          ORDER BY detector LIMIT 1 BY dedup_key`);
        return rows.length >= 2 ? rows : undefined;
      },
      {
        timeoutMs: 180_000,
        intervalMs: 1_000,
        what: `auth_burst and secret_in_args alerts (${detector.logFile})`,
      },
    );
    const [burst, secret] = alerts as [AlertRow, AlertRow];
    assert.equal(burst.detector, 'auth_burst');
    assert.equal(burst.client_id, `${H}`);
    assert.equal(Number(burst.expected_high), 14, 'judged against the baseline: threshold 15, not 10');
    assert.equal(Number(burst.observed), 15);
    assert.equal(secret.detector, 'secret_in_args');
    assert.equal(secret.client_id, `${S}`);
    assert.equal(alerts.length, 2, JSON.stringify(alerts));

    // ---- the notifier: delivered to the webhook, recorded in alert_deliveries (Distributed)
    for (const a of alerts)
      await waitFor(() => rx.webhook.accepted.some((x) => x.raw.includes(a.dedup_key)), {
        timeoutMs: 60_000,
        what: `${a.dedup_key} at the webhook`,
      });
    assert.deepEqual(rx.webhook.violations, []);
    const deliveries = await waitFor(
      async () => {
        const rows = (await deliveryRows(ch, notifierGroup)).filter((d) =>
          alerts.some((a) => a.dedup_key === d.dedup_key),
        );
        return rows.filter((d) => d.status === 'delivered').length >= 2 ? rows : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'both deliveries in alert_deliveries' },
    );
    for (const a of alerts) {
      const d = deliveries.filter((x) => x.dedup_key === a.dedup_key && x.status === 'delivered');
      assert.equal(d.length, 1, `one delivered row for ${a.dedup_key}: ${JSON.stringify(deliveries)}`);
      assert.equal(d[0]!.destination_id, 'siem');
    }

    // ---- the api reads it all through the Distributed tables
    const auth = { authorization: `Bearer ${keys.keys['clsvc-analyst']}` };
    const get = async <T>(path: string): Promise<T> => {
      const res = await fetch(`${api!.base}${path}`, { headers: auth });
      assert.equal(res.status, 200, `GET ${path}: ${await res.clone().text()}`);
      return (await res.json()) as T;
    };
    const list = await get<{ items: Array<{ alert_id: string; status: string }> }>(
      `/api/v1/alerts?client=${H}&client=${S}&detector=auth_burst&detector=secret_in_args`,
    );
    assert.deepEqual(list.items.map((x) => x.alert_id).sort(), alerts.map((a) => a.alert_id).sort());
    type Detail = {
      alert: { status: string; expected: { high: number } };
      transitions: Array<{ to_status: string; actor: string }>;
      deliveries: Array<{ destination: string; status: string }>;
      samples: Array<{ event_id: string }>;
    };
    const detail = await get<Detail>(`/api/v1/alerts/${burst.alert_id}`);
    assert.equal(detail.alert.status, 'open');
    assert.equal(Number(detail.alert.expected.high), 14);
    assert.ok(
      detail.transitions.some((x) => x.to_status === 'open'),
      JSON.stringify(detail.transitions),
    );
    assert.ok(
      detail.deliveries.some((x) => x.destination === 'siem' && x.status === 'delivered'),
      JSON.stringify(detail.deliveries),
    );
    assert.ok(detail.samples.length > 0, 'sample events of the alert, from the events table');
    const from = new Date(secretAt).toISOString();
    const to = new Date(secretAt + MIN).toISOString();
    const found = await get<{ items: Array<{ event_id: string }> }>(
      `/api/v1/events?client=${S}&from=${from}&to=${to}`,
    );
    assert.deepEqual(
      found.items.map((x) => x.event_id).sort(),
      live
        .slice(0, 2)
        .map((e) => e.event_id as string)
        .sort(),
    );
    const ack = await fetch(`${api.base}/api/v1/alerts/${burst.alert_id}/acknowledge`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'on the cluster' }),
    });
    assert.equal(ack.status, 200, await ack.clone().text());
    const acked = await get<Detail>(`/api/v1/alerts/${burst.alert_id}`);
    assert.equal(acked.alert.status, 'acknowledged');
    assert.ok(acked.transitions.some((x) => x.to_status === 'acknowledged' && x.actor === 'clsvc-analyst'));

    // Nothing of the services' ClickHouse work failed on the cluster.
    for (const line of [
      'periodic window failed',
      'periodic tick failed',
      'baseline run failed',
      'baseline job failed',
      'hour finalizer failed',
    ])
      assert.ok(!logOf(detector).includes(line), `detector log: ${line} (${detector.logFile})`);
    console.log(
      `cluster services: ${history.length + live.length} events; baseline of ${H} (8 days, 192 hours, worst ` +
        `hour 14 failed logins); alerts ${alerts.map((a) => a.dedup_key).join(', ')}; ` +
        `${deliveries.length} delivery rows; acknowledged through the api in ${Math.round((Date.now() - T0) / 1000)} s`,
    );
    for (const s of services) assert.ok(s.isRunning(), `${s.logFile} still running`);
  } finally {
    for (const s of services.reverse()) await s.stop();
    await api?.svc.stop();
    await rx.close();
    await admin
      .deleteTopics({ topics: [topics.events, topics.dlq, alertTopics.alerts, alertTopics.dlq] })
      .catch(() => {});
  }
});
