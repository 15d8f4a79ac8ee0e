import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { need, suffix, waitFor } from '../env.js';
import { brokers, env } from '../pipeline.js';
import type { Receivers } from './server.js';

export const ROUTING_KEY = 'R0123456789abcdef0123456789abcde';
export const WEBHOOK_SECRET = 'whsec-test-0123456789abcdef';

export async function createAlertTopics(admin: Admin, tag: string) {
  const alerts = `e2e.${tag}.alerts.${suffix()}`;
  const dlq = `e2e.${tag}.alerts-dlq.${suffix()}`;
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: alerts, numPartitions: 3, replicationFactor: 1 },
      { topic: dlq, numPartitions: 1, replicationFactor: 1 },
    ],
  });
  return { alerts, dlq };
}

/**
 * A routing file for the local receivers: every alert to Slack, PagerDuty and the webhook. Secrets
 * (URLs, routing key, signing secret) are referenced by environment variable, as in production.
 */
export function writeRoutes(opts: {
  base: string;
  slackRate?: { per_second: number; burst: number };
  destinations?: Array<'slack' | 'pagerduty' | 'webhook'>;
}): string {
  const dir = mkdtempSync(join(tmpdir(), 'notifier-e2e-'));
  const local = { allow_http: true, allow_networks: ['127.0.0.1/32'] };
  const all = {
    slack: {
      id: 'slack-secops',
      kind: 'slack',
      url: { env: 'E2E_SLACK_URL' },
      ...local,
      ...(opts.slackRate ? { rate: opts.slackRate } : {}),
    },
    pagerduty: {
      id: 'pd-oncall',
      kind: 'pagerduty',
      routing_key: { env: 'E2E_PD_ROUTING_KEY' },
      endpoint: `${opts.base}/pagerduty`,
      ...local,
      rate: { per_second: 50, burst: 50 },
    },
    webhook: {
      id: 'siem',
      kind: 'webhook',
      url: { env: 'E2E_WEBHOOK_URL' },
      secret: { file: join(dir, 'webhook-secret') },
      ...local,
    },
  };
  const ids = opts.destinations ?? ['slack', 'pagerduty', 'webhook'];
  writeFileSync(join(dir, 'webhook-secret'), `${WEBHOOK_SECRET}\n`, { mode: 0o600 });
  const file = join(dir, 'routes.json');
  writeFileSync(
    file,
    JSON.stringify({
      destinations: ids.map((k) => all[k]),
      rules: [{ name: 'everything', match: {}, destinations: ids.map((k) => all[k].id) }],
    }),
  );
  return file;
}

export function notifierEnv(
  rx: Receivers,
  topics: { alerts: string; dlq: string },
  group: string,
  routesFile: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    MCP_AUDIT_KAFKA_BROKERS: brokers.join(','),
    MCP_AUDIT_CLICKHOUSE_URL: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    MCP_AUDIT_CLICKHOUSE_WRITER_USER: need(env, 'MCP_AUDIT_CLICKHOUSE_WRITER_USER'),
    MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD: need(env, 'MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD'),
    MCP_AUDIT_ALERTS_TOPIC: topics.alerts,
    MCP_AUDIT_NOTIFIER_DLQ_TOPIC: topics.dlq,
    MCP_AUDIT_NOTIFIER_GROUP_ID: group,
    MCP_AUDIT_NOTIFIER_ROUTES_FILE: routesFile,
    MCP_AUDIT_NOTIFIER_PORT: '0',
    MCP_AUDIT_CONSOLE_URL: 'https://console.example.test',
    MCP_AUDIT_NOTIFIER_TIMEOUT_MS: '2000',
    MCP_AUDIT_NOTIFIER_BACKOFF_BASE_MS: '50',
    MCP_AUDIT_NOTIFIER_BACKOFF_MAX_MS: '1000',
    MCP_AUDIT_LOG_LEVEL: 'info',
    E2E_SLACK_URL: `${rx.base}/slack`,
    E2E_WEBHOOK_URL: `${rx.base}/webhook`,
    E2E_PD_ROUTING_KEY: ROUTING_KEY,
    ...extra,
  };
}

export async function produceAlerts(producer: Producer, topic: string, msgs: Array<{ dedup_key: string }>) {
  await producer.send({
    topic,
    acks: -1,
    messages: msgs.map((m) => ({ key: m.dedup_key, value: JSON.stringify(m) })),
  });
}

export async function deliveryRows(ch: ClickHouse, group: string) {
  return ch.query<{
    job_id: string;
    destination_id: string;
    destination_kind: string;
    status: string;
    final: number;
    http_status: number;
    attempt: number;
    action: string;
    error: string;
    dedup_key: string;
  }>(
    sql`SELECT job_id, destination_id, destination_kind, status, final, http_status, attempt, action, error, dedup_key
        FROM mcp_audit.alert_deliveries WHERE group_id = ${group} ORDER BY at, at_ms`,
  );
}

/** A routing file with destinations and rules of the test's own (secrets still by reference). */
export function writeRoutesFile(routes: { destinations: unknown[]; rules: unknown[] }): string {
  const dir = mkdtempSync(join(tmpdir(), 'notifier-e2e-'));
  const file = join(dir, 'routes.json');
  writeFileSync(file, JSON.stringify(routes));
  return file;
}

/** The notifier's ops server (/health, /metrics), from the "Server listening at" line it logs. */
export async function opsBase(logFile: string, timeoutMs = 30_000): Promise<string> {
  return waitFor(
    () => {
      const m = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(readFileSync(logFile, 'utf8'));
      return m?.[1];
    },
    { timeoutMs, what: 'the notifier ops server' },
  );
}

/** The value of one sample of a Prometheus text exposition, by name and label subset. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      [...(m[3] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return 0;
}

export interface TopicMessage {
  key: string;
  value: string;
  headers: Record<string, string>;
  partition: number;
  offset: string;
}

/** Reads a topic from the beginning with a throwaway group until `done` holds (polled). */
export async function readTopicUntil(
  k: Kafka,
  topic: string,
  done: (msgs: TopicMessage[]) => boolean,
  timeoutMs = 60_000,
): Promise<TopicMessage[]> {
  const msgs: TopicMessage[] = [];
  const consumer = k.consumer({ groupId: `e2e-read-${suffix()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        const headers: Record<string, string> = {};
        for (const [h, v] of Object.entries(message.headers ?? {})) headers[h] = String(v);
        msgs.push({
          key: message.key?.toString() ?? '',
          value: message.value?.toString() ?? '',
          headers,
          partition,
          offset: message.offset,
        });
      },
    });
    await waitFor(() => done(msgs), { timeoutMs, what: `messages on ${topic}` });
    return msgs;
  } finally {
    await consumer.disconnect();
  }
}

/** Parked jobs of a consumer group (mcp_audit.alert_outbox). */
export async function outboxRows(ch: ClickHouse, group: string) {
  return ch.query<{ job_id: string; destination_id: string; kafka_partition: number; kafka_offset: string }>(
    sql`SELECT job_id, destination_id, kafka_partition, kafka_offset FROM mcp_audit.alert_outbox WHERE group_id = ${group}`,
  );
}

/** The group's committed offset per partition (the next offset to read; -1 when none). */
export async function committedOffsets(admin: Admin, group: string, topic: string) {
  const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return new Map((t?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
}
