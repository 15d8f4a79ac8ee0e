import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { generateKeyPairSync } from 'node:crypto';
import {
  createOpener,
  createSealer,
  DLQ_HEADERS,
  type AuditProducer,
  type OutgoingMessage,
} from '@mcp-audit/kafka';
import { createEventRedactor } from '@mcp-audit/redaction';
import { createLogger, createRegistry } from '@mcp-audit/service-kit';
import { buildCollector, type CollectorConfig } from '../src/app.js';
import { createTokenStore, generateToken, hashToken } from '../src/source-tokens.js';

const log = createLogger('collector-unit', { level: 'silent' });
const dlqKeys = generateKeyPairSync('x25519');
const opener = createOpener([dlqKeys.privateKey]);
const ingestToken = generateToken();
const analystToken = generateToken();

interface FakeProducer extends AuditProducer {
  sent: Array<{ topic: string; messages: OutgoingMessage[] }>;
  connected: boolean;
}

function fakeProducer(): FakeProducer {
  const p: FakeProducer = {
    sent: [],
    connected: true,
    connect: async () => {
      p.connected = true;
    },
    send: async (topic, messages) => {
      if (messages.length > 0) p.sent.push({ topic, messages });
    },
    disconnect: async () => {
      p.connected = false;
    },
    isConnected: () => p.connected,
  };
  return p;
}

function build(
  over: Partial<CollectorConfig> = {},
  health?: () => { ok: boolean; details: Record<string, unknown> },
) {
  const producer = fakeProducer();
  const registry = createRegistry('collector-unit', { defaultMetrics: false });
  const app = buildCollector(
    {
      eventsTopic: 'events',
      dlqTopic: 'dlq',
      bodyLimitBytes: 1 << 20,
      maxEventsPerRequest: 100,
      rateLimitPerMinute: 1000,
      authFailuresPerMinute: 1000,
      requestTimeoutMs: 5000,
      ...over,
    },
    {
      producer,
      tokens: createTokenStore([
        { id: 'gw', source_id: 'gw-1', sha256: hashToken(ingestToken), scopes: ['ingest'], disabled: false },
        {
          id: 'soc',
          source_id: 'soc',
          sha256: hashToken(analystToken),
          scopes: ['analyst'],
          disabled: false,
        },
      ]),
      redactor: createEventRedactor({ fingerprintKey: 'collector-unit-key-0123456789' }),
      dlqSealer: createSealer(dlqKeys.publicKey),
      log,
      registry,
      ...(health ? { health } : {}),
    },
  );
  return { app, producer };
}

function event(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schema_version: 1,
    event_id: randomUUID(),
    ts: new Date().toISOString(),
    kind: 'tool_call',
    source: { type: 'gateway', id: 'gw-1', version: '0.1.0' },
    client: { id: 'client-1' },
    server: { name: 'filesystem', transport: 'stdio' },
    method: 'tools/call',
    tool: { name: 'read_file' },
    outcome: 'ok',
    duration_ms: 12,
    request_bytes: 100,
    response_bytes: 2000,
    ...over,
  };
}

const post = (
  app: ReturnType<typeof build>['app'],
  payload: string,
  o: { token?: string; type?: string; remoteAddress?: string } = {},
) =>
  app.inject({
    method: 'POST',
    url: '/v1/events',
    remoteAddress: o.remoteAddress ?? '127.0.0.1',
    headers: {
      'content-type': o.type ?? 'application/json',
      ...(o.token === '' ? {} : { authorization: `Bearer ${o.token ?? ingestToken}` }),
    },
    payload,
  });

test('/health: 200 while the producer is connected, 503 when it is not, when a dependency is not ok, and once closing', async () => {
  let depOk = true;
  const { app, producer } = build({}, () => ({ ok: depOk, details: { kafka: 'x' } }));
  let res = await app.inject({ method: 'GET', url: '/health' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ok', kafka: 'x' });

  producer.connected = false;
  res = await app.inject({ method: 'GET', url: '/health' });
  assert.equal(res.statusCode, 503);
  assert.equal(res.json().status, 'unhealthy');

  producer.connected = true;
  depOk = false;
  assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 503);
  depOk = true;
  assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
  await app.close();
});

test('/health and /metrics need no token', async () => {
  const { app } = build();
  assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
  await app.close();
});

test('/metrics: Prometheus text with the collector counters', async () => {
  const { app } = build({ rateLimitPerMinute: 2 });
  const mixed = JSON.stringify([event(), event(), event({ duration_ms: -1 })]);
  assert.equal((await post(app, mixed)).statusCode, 200);
  assert.equal((await post(app, mixed, { token: 'mcpa_wrong' })).statusCode, 401);
  assert.equal((await post(app, mixed)).statusCode, 200);
  assert.equal((await post(app, mixed)).statusCode, 429);

  const res = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const text = res.body;
  for (const name of [
    'mcp_audit_collector_events_accepted_total',
    'mcp_audit_collector_events_rejected_total',
    'mcp_audit_collector_requests_total',
    'mcp_audit_collector_rate_limited_total',
  ]) {
    assert.match(text, new RegExp(`^# HELP ${name} `, 'm'));
    assert.match(text, new RegExp(`^# TYPE ${name} counter$`, 'm'));
  }
  const value = (series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  assert.equal(
    value('mcp_audit_collector_events_accepted_total{source_id="gw-1",service="collector-unit"}'),
    4,
  );
  assert.equal(
    value(
      'mcp_audit_collector_events_rejected_total{code="AUDIT_ERR_INVALID_EVENT",service="collector-unit"}',
    ),
    2,
  );
  assert.equal(value('mcp_audit_collector_requests_total{status="200",service="collector-unit"}'), 2);
  assert.equal(value('mcp_audit_collector_requests_total{status="401",service="collector-unit"}'), 1);
  assert.equal(value('mcp_audit_collector_requests_total{status="429",service="collector-unit"}'), 1);
  assert.equal(value('mcp_audit_collector_rate_limited_total{limit="source",service="collector-unit"}'), 1);
  await app.close();
});

test('an over-rate source is refused before its body is read', async () => {
  const { app, producer } = build({ rateLimitPerMinute: 2, bodyLimitBytes: 4096 });
  const ok = JSON.stringify([event()]);
  assert.equal((await post(app, ok)).statusCode, 200);
  assert.equal((await post(app, ok)).statusCode, 200);
  // Malformed and oversized bodies: a parsed body would be a 400 or a 413.
  for (const payload of ['[{"broken', 'x'.repeat(10_000)]) {
    const res = await post(app, payload);
    assert.equal(res.statusCode, 429, res.body);
    assert.equal(res.json().error, 'AUDIT_ERR_RATE_LIMITED');
    assert.match(res.json().message, /source gw-1 is over its rate of 2 requests per minute; retry in \d+s/);
    assert.equal(res.headers['retry-after'], '30');
  }
  assert.equal(producer.sent.length, 2, 'only the two allowed requests reached the producer');
  await app.close();
});

test('failed authentications are limited per address, before the token is checked', async () => {
  const { app, producer } = build({ authFailuresPerMinute: 3, rateLimitPerMinute: 1000 });
  const body = JSON.stringify([event()]);
  const attacker = '192.0.2.7';
  const cases: Array<[string, number]> = [
    ['', 401],
    ['mcpa_guess1', 401],
    [analystToken, 403],
  ];
  for (const [token, status] of cases) {
    assert.equal((await post(app, body, { token, remoteAddress: attacker })).statusCode, status);
  }
  // The fourth guess, and even a right token, from that address: 429 with Retry-After.
  for (const token of ['mcpa_guess2', ingestToken]) {
    const res = await post(app, '[{"broken', { token, remoteAddress: attacker });
    assert.equal(res.statusCode, 429, res.body);
    assert.match(res.json().message, /too many failed authentications from this address/);
    assert.equal(res.headers['retry-after'], '20');
  }
  // Another address is unaffected, and successes never count against an address.
  for (let i = 0; i < 5; i++) {
    assert.equal((await post(app, body, { remoteAddress: '192.0.2.8' })).statusCode, 200);
  }
  assert.equal((await post(app, body, { token: 'mcpa_x', remoteAddress: '192.0.2.8' })).statusCode, 401);
  assert.equal(producer.sent.length, 5);
  await app.close();
});

test('a malformed JSON array is a 400 naming the byte, and nothing is produced', async () => {
  const { app, producer } = build();
  const res = await post(app, `[${JSON.stringify(event())} {"a":1}]`);
  assert.equal(res.statusCode, 400);
  assert.equal(res.json().error, 'AUDIT_ERR_INVALID_REQUEST');
  assert.match(res.json().message, /expected ',' or '\]' but found '\{' at byte \d+/);
  assert.equal(producer.sent.length, 0);
  await app.close();
});

test('JSON array and NDJSON take the same parse path: same results, same bytes out', async () => {
  const { app, producer } = build();
  const dup = JSON.stringify(event()).replace(
    '"client":{"id":"client-1"',
    '"client":{"id":"client-1","id":"victim"',
  );
  // Spacing, escapes and an unknown field that a parse-and-serialize round trip would change.
  // (One line, so it can be an NDJSON line too.)
  const ok = JSON.stringify(event({ x_note: 'é ✓' }))
    .replace(/":/g, '" :\t')
    .replace(/,"/g, ' , "')
    .replace('é', '\\u00e9');
  const bad = JSON.stringify(event({ duration_ms: -1 }));
  const asArray = await post(app, `[\n${dup},\n${ok} , ${bad}, 42]`);
  const asNdjson = await post(app, [dup, ok, bad, '42'].join('\n'), { type: 'application/x-ndjson' });
  assert.equal(asArray.statusCode, 200, asArray.body);
  assert.deepEqual(asArray.json(), asNdjson.json());
  const r = asArray.json().results;
  assert.equal(r[0].code, 'AUDIT_ERR_INVALID_EVENT');
  assert.match(r[0].reason, /client\.id: duplicate key/);
  assert.equal(r[1].status, 'accepted');
  assert.equal(r[3].code, 'AUDIT_ERR_INVALID_EVENT');

  const events = producer.sent.filter((s) => s.topic === 'events').flatMap((s) => s.messages);
  const dead = producer.sent.filter((s) => s.topic === 'dlq').flatMap((s) => s.messages);
  assert.deepEqual(
    events.map((m) => String(m.value)),
    [ok, ok],
  );
  // The readable value is redacted (a duplicate key is gone once parsed); the bytes as sent are
  // kept only sealed to the replay key.
  assert.deepEqual(
    dead.map((m) =>
      String(opener.open(m.headers![DLQ_HEADERS.sealed] as Buffer, String(m.headers![DLQ_HEADERS.keyId]))),
    ),
    [dup, bad, '42', dup, bad, '42'],
  );
  assert.deepEqual(
    dead.map((m) => String(m.value)),
    [dup.replace('"id":"client-1",', ''), bad, '42', dup.replace('"id":"client-1",', ''), bad, '42'],
  );
  await app.close();
});

test('an empty or blank body is a 400, whatever the content type', async () => {
  const { app } = build();
  for (const [payload, type] of [
    ['', 'application/json'],
    [' \n', 'application/json'],
    ['[]', 'application/json'],
    ['', 'application/x-ndjson'],
    ['\n\n', 'application/x-ndjson'],
  ]) {
    const res = await post(app, payload!, { type: type! });
    assert.equal(res.statusCode, 400, `${JSON.stringify(payload)} as ${type}: ${res.body}`);
    assert.equal(res.json().error, 'AUDIT_ERR_INVALID_REQUEST');
  }
  await app.close();
});

test('secrets are redacted before Kafka: in args, in an unknown field, in client.id (and so the key); a clean event stays byte-equal', async () => {
  const { app, producer } = build();
  const token = `ghp_${'A1b2C3d4'.repeat(5)}`;
  const dirty = JSON.stringify(
    event({ args: { note: `use ${token}` }, x_extra: { auth: `Bearer ${token}` }, client: { id: token } }),
  );
  const clean = JSON.stringify(event({ client: { id: 'client-7' }, x_extra: { n: 1 } }));
  const res = await post(app, `[${dirty},${clean}]`);
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual(
    res.json().results.map((r: { status: string }) => r.status),
    ['accepted', 'accepted'],
  );
  const [d, c] = producer.sent.filter((s) => s.topic === 'events').flatMap((s) => s.messages);
  assert.ok(d && c);
  for (const part of [String(d.value), String(d.key)]) assert.ok(!part.includes(token), part);
  const stored = JSON.parse(String(d.value)) as { args: { note: string }; x_extra: { auth: string } };
  assert.match(stored.args.note, /^use \[REDACTED/);
  assert.match(stored.x_extra.auth, /REDACTED/);
  assert.equal(String(c.value), clean);
  await app.close();
});
