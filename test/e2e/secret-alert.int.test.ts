/**
 * secret_in_args through the pipeline (issue 14 item 6): events whose arguments and error text carry a
 * credential go through Kafka and a real ingester (which redacts them to `[REDACTED:<kind>:<fp>]`) into
 * an own database; the periodic detector reads the stored markers. One alert per (client, kind,
 * fingerprint), with kind and fingerprint and never the value; a repeat while open is part of it;
 * after `expireMs` the same fingerprint from the same client is a new alert.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createClickHouse, dbIdent, runMigrations, sql } from '@mcp-audit/clickhouse';
import {
  Lifecycle,
  createPeriodicRunner,
  memorySink,
  parseDetectorConfig,
  secretInArgsDetector,
} from '@mcp-audit/detector';
import { eventKeyFor } from '@mcp-audit/schema';
import { createLogger } from '@mcp-audit/service-kit';
import {
  REPO_ROOT,
  createTestTopics,
  env,
  kafka,
  makeEvent,
  need,
  rng,
  startService,
  suffix,
  waitFor,
} from '../lib/index.js';

const MIN = 60_000;
const DAY = 86_400_000;
const B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const rand = (n: number, alphabet = B62) =>
  [...randomBytes(n)].map((b) => alphabet[b % alphabet.length]).join('');

test('a credential in tool arguments or results: one alert per client and fingerprint, never the value; a new alert after expiry', async () => {
  const sfx = suffix();
  const db = `mcp_audit_secret_${sfx}`;
  const user = need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER');
  const password = need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD');
  const url = env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
  const admin = createClickHouse({ url, username: user, password });
  await runMigrations({ client: admin, dir: `${REPO_ROOT}schemas/clickhouse/`, database: db });
  const ch = createClickHouse({ url, username: user, password, database: db });
  const k = kafka();
  const kadmin = k.admin();
  await kadmin.connect();
  const producer = k.producer({ idempotent: true, allowAutoTopicCreation: false });
  await producer.connect();
  const topics = await createTestTopics(kadmin, 'secret', 1);
  const ingester = startService(
    'ingester',
    {
      MCP_AUDIT_KAFKA_BROKERS: env.MCP_AUDIT_KAFKA_BROKERS ?? '127.0.0.1:9092',
      MCP_AUDIT_CLICKHOUSE_URL: url,
      MCP_AUDIT_CLICKHOUSE_DATABASE: db,
      MCP_AUDIT_CLICKHOUSE_WRITER_USER: user,
      MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD: password,
      MCP_AUDIT_REDACTION_KEY: `secret-alert-test-key-${sfx}-0123456789`,
      MCP_AUDIT_EVENTS_TOPIC: topics.events,
      MCP_AUDIT_DLQ_TOPIC: topics.dlq,
      MCP_AUDIT_INGESTER_GROUP_ID: `e2e-secret-${sfx}`,
      MCP_AUDIT_INGESTER_PORT: '0',
      MCP_AUDIT_LOG_LEVEL: 'info',
    },
    `secret-${sfx}`,
  );
  try {
    const github = `ghp_${rand(36)}`;
    const awsId = `AKIA${rand(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}`;
    // Ten days back, on a 5-minute boundary (the live path accepts events up to 30 days old).
    const t0 = Math.floor((Date.now() - 10 * DAY) / (5 * MIN)) * 5 * MIN;
    const r = rng(7);
    const ev = (client: string, at: number, o: Record<string, unknown>) => {
      const e = makeEvent(r, 0, { sourceId: `gw-secret-${sfx}`, clientPrefix: `sec-${sfx}` });
      e.ts = new Date(at).toISOString();
      e.client = { ...(e.client as object), id: `${client}-${sfx}` };
      e.outcome = 'ok';
      e.tool_is_error = false;
      delete e.error;
      return { ...e, ...o };
    };
    const events = [
      ev('a', t0 + 1 * MIN, { args: { repo: 'acme/api', note: `clone with ${github} please` } }),
      ev('a', t0 + 2 * MIN, { args: { path: '/srv/readme.md' } }),
      // The same token again, two windows later: part of the open alert.
      ev('a', t0 + 12 * MIN, { args: { headers: { 'x-note': `use ${github}` } } }),
      // Another client passing the same token: its own alert.
      ev('b', t0 + 13 * MIN, { args: { text: `token is ${github}` } }),
      // A cloud key in a tool's error result: another fingerprint, another alert.
      ev('a', t0 + 20 * MIN, {
        outcome: 'error',
        tool_is_error: true,
        error: { code: 'UPSTREAM', message: `s3 denied for ${awsId} in eu-west-1` },
      }),
      // Eight days later (past the 7-day expiry): the same token from the same client alerts again.
      ev('a', t0 + 8 * DAY + 3 * MIN, { args: { note: `again ${github}` } }),
    ];
    await producer.send({
      topic: topics.events,
      acks: -1,
      messages: events.map((e) => ({
        key: eventKeyFor(String((e.client as { id: string }).id)),
        value: JSON.stringify(e),
      })),
    });
    await waitFor(
      async () => {
        const [c] = await ch.query<{ n: string }>(sql`SELECT uniqExact(event_id) AS n FROM events`);
        return Number(c?.n ?? 0) >= events.length || undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500, what: 'the events stored by the ingester' },
    );
    const stored = await ch.query<{ args: string; error_message: string; raw: string }>(
      sql`SELECT args, error_message, raw FROM events`,
    );
    const text = JSON.stringify(stored);
    assert.ok(!text.includes(github) && !text.includes(awsId), 'the values never reach storage');
    assert.match(text, /\[REDACTED:github_token:[0-9a-f]{8}\]/);

    const cfg = parseDetectorConfig({});
    assert.equal(cfg.periodic.secretInArgs.expireMs, 7 * DAY);
    const sink = memorySink();
    const log = createLogger('secret-alert-test', { level: 'silent' });
    const lifecycle = new Lifecycle({ sink, log, origin: 'replay', now: () => 0 });
    const runner = createPeriodicRunner({
      detectors: [secretInArgsDetector(ch, cfg.periodic.secretInArgs)],
      lifecycle,
      watermark: async () => 0,
      lateMs: 0,
      log,
    });
    await runner.runRange(t0, t0 + 8 * DAY + 30 * MIN);
    await lifecycle.flush();
    const alerts = sink.messages.flatMap((m) => (m.type === 'alert' ? [m] : []));
    const tokenFp = /\[REDACTED:github_token:([0-9a-f]{8})\]/.exec(text)![1]!;
    const keys = alerts.map((a) => `${a.client_id} ${a.dedup_key} ${a.window.start}`);
    assert.equal(alerts.length, 4, keys.join('\n'));
    const of = (client: string) => alerts.filter((a) => a.client_id === `${client}-${sfx}`);
    const a = of('a');
    assert.deepEqual(
      a.map((x) => x.dedup_key.replace(`-${sfx}`, '')).sort(),
      [
        `secret_in_args:a/aws_access_key_id/${/aws_access_key_id:([0-9a-f]{8})/.exec(text)![1]}:5m`,
        `secret_in_args:a/github_token/${tokenFp}:5m`,
        `secret_in_args:a/github_token/${tokenFp}:5m`,
      ].sort(),
    );
    const [first, again] = a
      .filter((x) => x.dedup_key.includes('github_token'))
      .sort((x, y) => Date.parse(x.window.start) - Date.parse(y.window.start));
    assert.equal(Date.parse(first!.window.start), t0);
    assert.equal(Date.parse(again!.window.start), t0 + 8 * DAY);
    assert.notEqual(first!.alert_id, again!.alert_id, 'after expiry a new alert');
    assert.match(first!.summary, new RegExp(`github_token credential \\(fingerprint ${tokenFp}\\)`));
    assert.match(first!.summary, /in the arguments of 1 call/);
    const aws = a.find((x) => x.dedup_key.includes('aws_access_key_id'))!;
    assert.match(aws.summary, /in the error results of 1 call/);
    assert.equal(of('b').length, 1);
    assert.equal(of('b')[0]!.dedup_key, `secret_in_args:b-${sfx}/github_token/${tokenFp}:5m`);
    // The repeat at +12 min was suppressed, the first alert expired 7 days after it opened.
    const resolved = sink.messages.flatMap((m) => (m.type === 'state_change' ? [m] : []));
    assert.ok(resolved.some((m) => m.alert_id === first!.alert_id && m.status === 'resolved'));
    for (const x of alerts) {
      const all = JSON.stringify(x);
      assert.ok(!all.includes(github) && !all.includes(awsId), 'never the value');
    }
  } finally {
    await ingester.stop();
    await producer.disconnect();
    await kadmin.deleteTopics({ topics: [topics.events, topics.dlq] }).catch(() => undefined);
    await kadmin.disconnect();
    await ch.close();
    await admin.command(sql`DROP DATABASE IF EXISTS ${dbIdent(db)}`);
    await admin.close();
  }
});
