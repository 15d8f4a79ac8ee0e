import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin } from 'kafkajs';
import { buildCollector, createTokenStore, hashToken, generateToken } from '@mcp-audit/collector';
import { createKafka, createProducer, type AuditProducer } from '@mcp-audit/kafka';
import { createEventRedactor } from '@mcp-audit/redaction';
import { createLogger, createRegistry } from '@mcp-audit/observability';
import { brokers, createTestTopics, kafka, makeEvent, rng, suffix } from '../lib/index.js';

const log = createLogger('collector-test', { level: 'silent' });
let admin: Admin;
let producer: AuditProducer;
let topics: { events: string; dlq: string };
const ingestToken = generateToken();
const analystToken = generateToken();
const sourceId = `gw-${suffix()}`;

before(async () => {
  admin = kafka().admin();
  await admin.connect();
  topics = await createTestTopics(admin, 'collector', 1);
  producer = createProducer(
    createKafka(
      {
        brokers,
        clientId: 'collector-test',
        ssl: false,
        replicationFactor: 1,
        connectionTimeoutMs: 3000,
        requestTimeoutMs: 10000,
      },
      log,
    ),
  );
  await producer.connect();
});

after(async () => {
  await producer.disconnect();
  await admin.disconnect();
});

function build(over: { bodyLimitBytes?: number; rateLimitPerMinute?: number } = {}) {
  return buildCollector(
    {
      eventsTopic: topics.events,
      dlqTopic: topics.dlq,
      bodyLimitBytes: over.bodyLimitBytes ?? 1024 * 1024,
      maxEventsPerRequest: 1000,
      rateLimitPerMinute: over.rateLimitPerMinute ?? 1000,
      requestTimeoutMs: 10_000,
    },
    {
      producer,
      tokens: createTokenStore([
        {
          id: 'gw',
          source_id: sourceId,
          sha256: hashToken(ingestToken),
          scopes: ['ingest'],
          disabled: false,
        },
        {
          id: 'soc',
          source_id: 'soc',
          sha256: hashToken(analystToken),
          scopes: ['analyst'],
          disabled: false,
        },
      ]),
      redactor: createEventRedactor({ fingerprintKey: 'collector-test-key-0123456789' }),
      log,
      registry: createRegistry('collector-test', { defaultMetrics: false }),
    },
  );
}

async function endOffset(topic: string): Promise<number> {
  const offs = await admin.fetchTopicOffsets(topic);
  return offs.reduce((s, o) => s + Number(o.high), 0);
}

const events = (n: number, src = sourceId) => {
  const r = rng(3);
  return Array.from({ length: n }, (_, i) => makeEvent(r, i, { sourceId: src }));
};

test('missing, wrong and wrong-scope tokens get 401/403 and produce nothing', async () => {
  const app = build();
  const before = await endOffset(topics.events);
  const payload = JSON.stringify(events(3));
  const cases: Array<[string | undefined, number]> = [
    [undefined, 401],
    ['Bearer mcpa_wrong', 401],
    [`Basic ${Buffer.from('a:b').toString('base64')}`, 401],
    [`Bearer ${analystToken}`, 403],
  ];
  for (const [authorization, status] of cases) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      payload,
    });
    assert.equal(res.statusCode, status, `${authorization ?? 'no token'} → ${res.body}`);
    assert.match(res.json().error, /AUDIT_ERR_(UNAUTHENTICATED|FORBIDDEN)/);
  }
  assert.equal(await endOffset(topics.events), before, 'nothing reached Kafka');
  await app.close();
});

test('valid batch is acknowledged only once Kafka has it; per-event results name rejections', async () => {
  const app = build();
  const before = await endOffset(topics.events);
  const batch: Array<Record<string, unknown>> = events(5);
  batch.push({ ...events(1)[0]!, duration_ms: -1 });
  batch.push({ ...events(1, 'someone-else')[0]! });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestToken}` },
    payload: JSON.stringify(batch),
  });
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json();
  assert.equal(body.accepted, 5);
  assert.equal(body.rejected, 2);
  assert.match(body.results[5].reason, /duration_ms/);
  assert.equal(body.results[6].code, 'AUDIT_ERR_SOURCE_MISMATCH');
  assert.equal(await endOffset(topics.events), before + 5);
  assert.ok((await endOffset(topics.dlq)) >= 2, 'rejected events are dead-lettered too');
  await app.close();
});

test('a body over the limit gets 413', async () => {
  const app = build({ bodyLimitBytes: 4096 });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestToken}` },
    payload: JSON.stringify(events(20)),
  });
  assert.equal(res.statusCode, 413, res.body);
  assert.equal(res.json().error, 'AUDIT_ERR_BODY_TOO_LARGE');
  await app.close();
});

test('a source over its rate gets 429', async () => {
  const app = build({ rateLimitPerMinute: 3 });
  const send = () =>
    app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${ingestToken}` },
      payload: events(1)
        .map((e) => JSON.stringify(e))
        .join('\n'),
    });
  for (let i = 0; i < 3; i++) assert.equal((await send()).statusCode, 200);
  const limited = await send();
  assert.equal(limited.statusCode, 429, limited.body);
  assert.ok(limited.headers['retry-after'], 'Retry-After is set');
  await app.close();
});

test('Kafka unavailable: 503 with Retry-After, never a 2xx', async () => {
  // A real producer aimed at a port where no broker listens.
  const down = createProducer(
    createKafka(
      {
        brokers: ['127.0.0.1:1'],
        clientId: 'collector-down',
        ssl: false,
        replicationFactor: 1,
        connectionTimeoutMs: 300,
        requestTimeoutMs: 1000,
      },
      log,
    ),
  );
  const app = buildCollector(
    {
      eventsTopic: topics.events,
      dlqTopic: topics.dlq,
      bodyLimitBytes: 1 << 20,
      maxEventsPerRequest: 100,
      rateLimitPerMinute: 100,
      requestTimeoutMs: 5000,
    },
    {
      producer: down,
      tokens: createTokenStore([
        {
          id: 'gw',
          source_id: sourceId,
          sha256: hashToken(ingestToken),
          scopes: ['ingest'],
          disabled: false,
        },
      ]),
      redactor: createEventRedactor({ fingerprintKey: 'collector-test-key-0123456789' }),
      log,
      registry: createRegistry('collector-test-2', { defaultMetrics: false }),
    },
  );
  const res = await app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestToken}` },
    payload: JSON.stringify(events(2)),
  });
  assert.equal(res.statusCode, 503);
  assert.equal(res.headers['retry-after'], '5');
  await app.close();
});
