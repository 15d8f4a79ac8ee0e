import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Admin, Producer } from 'kafkajs';
import type { ClickHouse } from '@mcp-audit/clickhouse';
import { kafka, startService, suffix, waitFor, useStackClients } from '../lib/index.js';
import {
  createAlertTopics,
  deliveryRows,
  makeAlert,
  metricValue,
  notifierEnv,
  opsBase,
  produceAlerts,
  readTopicUntil,
  startReceivers,
  writeRoutes,
  writeRoutesFile,
  ROUTING_KEY,
  WEBHOOK_SECRET,
} from '../lib/receivers/index.js';

let admin: Admin;
let producer: Producer;
let ch: ClickHouse;
useStackClients((c) => ({ admin, producer, ch } = c));

/** JSON log lines of a service's log file (pino), skipping anything else. */
function logLines(file: string): Array<Record<string, unknown>> {
  return readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

test('a receiver that always fails: after the retry budget the alert is in the dead-letter topic with its reasons, on /metrics and in the log', async () => {
  const tag = `dlq-${suffix()}`;
  const rx = await startReceivers({ routingKey: ROUTING_KEY, webhookSecret: WEBHOOK_SECRET });
  rx.webhook.fallback = { status: 500 };
  const topics = await createAlertTopics(admin, tag);
  const group = `e2e-notifier-${suffix()}`;
  const routes = writeRoutes({ base: rx.base, destinations: ['webhook'] });
  const svc = startService(
    'notifier',
    notifierEnv(rx, topics, group, routes, { MCP_AUDIT_NOTIFIER_MAX_ATTEMPTS: '3' }),
    tag,
  );
  try {
    const alerts = [makeAlert(1, tag), makeAlert(2, tag)];
    await produceAlerts(producer, topics.alerts, alerts);
    const dlq = await readTopicUntil(kafka(), topics.dlq, (m) => m.length >= 2, 90_000);
    assert.equal(dlq.length, 2, 'each alert dead-lettered once');
    assert.deepEqual(dlq.map((m) => (JSON.parse(m.value) as { alert_id: string }).alert_id).sort(), [
      ...alerts.map((a) => a.alert_id).sort(),
    ]);
    for (const m of dlq) {
      const a = alerts.find((x) => x.alert_id === (JSON.parse(m.value) as { alert_id: string }).alert_id)!;
      assert.equal(m.key, a.dedup_key);
      assert.equal(m.headers['mcp-audit-dlq-code'], 'AUDIT_ERR_DELIVERY_EXHAUSTED');
      assert.equal(m.headers['mcp-audit-dlq-reason'], 'HTTP 500 Internal Server Error');
      assert.equal(m.headers['mcp-audit-destination-id'], 'siem');
      assert.equal(m.headers['mcp-audit-attempts'], '3');
      assert.equal(m.headers['mcp-audit-http-status'], '500');
      assert.equal(m.headers['mcp-audit-job-id'], `${a.alert_id}:siem`);
      assert.ok(!Number.isNaN(Date.parse(m.headers['mcp-audit-dlq-at'] ?? '')), 'dead-lettered at');
    }
    assert.equal(rx.webhook.requests, 6, 'three attempts each, then no more');
    const base = await opsBase(svc.logFile);
    const metrics = await waitFor(
      async () => {
        const text = await (await fetch(`${base}/metrics`)).text();
        return metricValue(text, 'mcp_audit_notifier_dead_lettered_total', { destination: 'siem' }) === 2
          ? text
          : undefined;
      },
      { timeoutMs: 10_000, what: 'the dead-letter counter' },
    );
    assert.equal(metricValue(metrics, 'mcp_audit_notifier_delivered_total', { destination: 'siem' }), 0);
    const logged = logLines(svc.logFile).filter(
      (l) => l.msg === 'alert delivery dead-lettered after its retry budget',
    );
    assert.equal(logged.length, 2, 'one error line per dead-lettered alert');
    for (const l of logged) {
      assert.equal(l.level, 50, 'logged as an error');
      assert.equal(l.destination, 'siem');
      assert.equal(l.attempts, 3);
      assert.ok(alerts.some((a) => a.dedup_key === l.dedupKey));
    }
    const rows = await waitFor(
      async () => {
        const r = await deliveryRows(ch, group);
        return r.filter((x) => x.status === 'dead_lettered').length >= 2 ? r : undefined;
      },
      { timeoutMs: 30_000, what: 'dead_lettered rows' },
    );
    assert.equal(rows.filter((r) => r.status === 'failed').length, 6);
    assert.ok(rows.filter((r) => r.status === 'dead_lettered').every((r) => r.final === 1));
  } finally {
    await svc.stop();
    await rx.close();
  }
});

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('a secret webhook URL (host, path, token) never reaches alert_deliveries, the logs or the dead-letter topic: DNS failure, refused, timeout, 500 echoing it', async () => {
  const tag = `secret-${suffix()}`;
  const secret = `S3cr3tT0ken${suffix()}${suffix()}`;
  const rx = await startReceivers({ routingKey: ROUTING_KEY, webhookSecret: WEBHOOK_SECRET });
  const port = await closedPort();
  const urls = {
    dns: `https://hooks-${secret.toLowerCase()}.invalid/services/${secret}`,
    refused: `http://127.0.0.1:${port}/services/${secret}`,
    timeout: `${rx.base}/slack/services/${secret}`,
    echo: `${rx.base}/webhook/services/${secret}?token=${secret}`,
  };
  // The receiver echoes the request, as some do in their error pages: URL, host and token.
  rx.slack.fallback = { hang: true };
  rx.webhook.fallback = {
    status: 500,
    body: `<h1>500</h1> POST ${urls.echo} host=${new URL(urls.echo).host} token=${secret} ${urls.dns}`,
  };
  const local = { allow_http: true, allow_networks: ['127.0.0.1/32'] };
  const ids = Object.keys(urls);
  const routes = writeRoutesFile({
    destinations: ids.map((id) => ({
      id,
      kind: 'webhook',
      url: { env: `E2E_URL_${id.toUpperCase()}` },
      secret: { env: 'E2E_SIGNING_SECRET' },
      ...local,
    })),
    rules: [{ name: 'all', destinations: ids }],
  });
  const topics = await createAlertTopics(admin, tag);
  const group = `e2e-notifier-${suffix()}`;
  const svc = startService(
    'notifier',
    notifierEnv(rx, topics, group, routes, {
      MCP_AUDIT_NOTIFIER_MAX_ATTEMPTS: '2',
      MCP_AUDIT_NOTIFIER_TIMEOUT_MS: '500',
      E2E_SIGNING_SECRET: WEBHOOK_SECRET,
      ...Object.fromEntries(Object.entries(urls).map(([id, u]) => [`E2E_URL_${id.toUpperCase()}`, u])),
    }),
    tag,
  );
  try {
    await produceAlerts(producer, topics.alerts, [makeAlert(1, tag)]);
    const dlq = await readTopicUntil(kafka(), topics.dlq, (m) => m.length >= ids.length, 90_000);
    const rows = await waitFor(
      async () => {
        const r = await deliveryRows(ch, group);
        return r.filter((x) => x.status === 'dead_lettered').length >= ids.length ? r : undefined;
      },
      { timeoutMs: 30_000, what: 'every destination dead-lettered' },
    );
    const base = await opsBase(svc.logFile);
    await svc.stop();
    const errorOf = (id: string) => rows.find((r) => r.destination_id === id && r.status === 'failed')!.error;
    assert.match(errorOf('dns'), /^(ENOTFOUND|EAI_AGAIN|EAI_FAIL|EAI_NODATA): DNS lookup/);
    assert.equal(errorOf('refused'), 'ECONNREFUSED: connection refused');
    assert.equal(errorOf('timeout'), 'AUDIT_ERR_DELIVERY_TIMEOUT: timed out after 500 ms');
    assert.equal(errorOf('echo'), 'HTTP 500 Internal Server Error');
    const forbidden = [
      secret,
      secret.toLowerCase(),
      'services/',
      '.invalid',
      `hooks-${secret.toLowerCase()}`,
      rx.base,
      new URL(rx.base).host,
    ];
    // The ops server may, rarely, be given the port just closed: then that port is no evidence.
    if (!base.endsWith(`:${port}`)) forbidden.push(`127.0.0.1:${port}`, `:${port}/`);
    const places = {
      alert_deliveries: JSON.stringify(rows),
      log: readFileSync(svc.logFile, 'utf8'),
      'dead-letter headers': JSON.stringify(dlq.map((m) => m.headers)),
    };
    for (const [where, text] of Object.entries(places))
      for (const bad of forbidden) assert.ok(!text.includes(bad), `${where} contains ${bad}`);
    assert.ok(rx.webhook.requests >= 2 && rx.slack.requests >= 2, 'the failures really happened');
  } finally {
    await svc.stop();
    await rx.close();
  }
});
