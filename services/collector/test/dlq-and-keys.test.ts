import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { AuditProducer, OutgoingMessage } from '@mcp-audit/kafka';
import { createEventRedactor } from '@mcp-audit/redaction';
import { createLogger, createRegistry } from '@mcp-audit/service-kit';
import { buildCollector } from '../src/app.js';
import { createTokenStore, generateToken, hashToken } from '../src/source-tokens.js';

// Secrets the redactor knows by pattern: they must never leave the collector in clear.
const GH = 'ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8';
const AWS = 'AKIAIOSFODNN7EXAMPLE';
const PASSWORD = 'hunter2-correct-horse-battery';

const token = generateToken();
const sent: Array<{ topic: string; messages: OutgoingMessage[] }> = [];
const producer: AuditProducer = {
  connect: async () => undefined,
  send: async (topic, messages) => {
    if (messages.length > 0) sent.push({ topic, messages });
  },
  disconnect: async () => undefined,
  isConnected: () => true,
};

function build() {
  return buildCollector(
    {
      eventsTopic: 'events',
      dlqTopic: 'dlq',
      bodyLimitBytes: 1 << 20,
      maxEventsPerRequest: 100,
      rateLimitPerMinute: 1000,
      authFailuresPerMinute: 1000,
      requestTimeoutMs: 5000,
    },
    {
      producer,
      tokens: createTokenStore([
        { id: 'gw', source_id: 'gw-1', sha256: hashToken(token), scopes: ['ingest'], disabled: false },
      ]),
      redactor: createEventRedactor({ fingerprintKey: 'collector-unit-key-0123456789' }),
      log: createLogger('collector-unit', { level: 'silent' }),
      registry: createRegistry('collector-unit', { defaultMetrics: false }),
    },
  );
}

function event(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schema_version: 1,
    event_id: randomUUID(),
    ts: new Date().toISOString(),
    kind: 'tool_call',
    source: { type: 'gateway', id: 'gw-1', version: '0.1.0' },
    client: { id: `client ${GH}` },
    server: { name: 'filesystem', transport: 'stdio' },
    method: 'tools/call',
    tool: { name: 'read_file' },
    outcome: 'ok',
    duration_ms: 12,
    request_bytes: 100,
    response_bytes: 2000,
    args: { path: '/tmp/x', password: PASSWORD, note: `key ${AWS}` },
    ...over,
  };
}

/** Every byte of a message: key, value, header names and values. */
function bytesOf(m: OutgoingMessage): Buffer {
  const parts: Buffer[] = [Buffer.from(m.key ?? ''), Buffer.from(m.value)];
  for (const [k, v] of Object.entries(m.headers ?? {})) parts.push(Buffer.from(k), Buffer.from(v));
  return Buffer.concat(parts);
}

function assertNoSecret(m: OutgoingMessage, where: string) {
  const b = bytesOf(m);
  for (const s of [GH, AWS, PASSWORD]) {
    assert.equal(b.includes(s), false, `${where} holds ${s.slice(0, 6)}… in clear`);
  }
}

async function post(app: ReturnType<typeof build>, body: string, type = 'application/x-ndjson') {
  return app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': type, authorization: `Bearer ${token}` },
    payload: body,
  });
}

test('dead letters of every kind of rejection carry no secret in clear (value, key, headers)', async () => {
  sent.length = 0;
  const app = build();
  const lines = [
    JSON.stringify(event({ duration_ms: -5 })), // invalid field
    JSON.stringify(event({ args: { blob: 'x'.repeat(70 * 1024), password: PASSWORD, n: AWS } })), // args over the limit
    JSON.stringify(event({ ts: '2999-01-01T00:00:00.000Z' })), // skewed clock
    `{"schema_version":1,"client":{"id":"${GH}"},"args":{"password":"${PASSWORD}","k":"${AWS}"`, // malformed JSON
    JSON.stringify(event({ source: { type: 'gateway', id: `gw ${GH}`, version: '1' } })), // wrong source
    JSON.stringify(event({ schema_version: 2 })),
  ];
  const res = await post(app, lines.join('\n'));
  assert.equal(res.statusCode, 400, res.body);
  assert.equal(res.json().rejected, lines.length);
  const dead = sent.filter((s) => s.topic === 'dlq').flatMap((s) => s.messages);
  assert.equal(dead.length, lines.length);
  dead.forEach((m, i) => assertNoSecret(m, `dead letter ${i}`));
  // The response itself names fields, never the secrets.
  for (const s of [GH, AWS, PASSWORD]) assert.equal(res.body.includes(s), false);
  await app.close();
});

test('the events message key never carries a secret of client.id, and one client always gets one key', async () => {
  sent.length = 0;
  const app = build();
  const res = await post(
    app,
    [event(), event(), event({ client: { id: 'plain-client' } })].map((e) => JSON.stringify(e)).join('\n'),
  );
  assert.equal(res.statusCode, 200, res.body);
  const out = sent.filter((s) => s.topic === 'events').flatMap((s) => s.messages);
  assert.equal(out.length, 3);
  out.forEach((m, i) => assertNoSecret(m, `event ${i}`));
  assert.equal(String(out[0]!.key), String(out[1]!.key), 'one client, one key');
  assert.notEqual(String(out[0]!.key), String(out[2]!.key));
  assert.equal(String(out[2]!.key).includes('plain-client'), false, 'the key is derived, not the raw id');
  await app.close();
});
