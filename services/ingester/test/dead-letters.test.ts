import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { AuditProducer, BatchContext, ConsumedMessage, OutgoingMessage } from '@mcp-audit/kafka';
import { createEventRedactor } from '@mcp-audit/redaction';
import { createLogger, createRegistry, type BatchWriter } from '@mcp-audit/service-kit';
import { createAuditEventsHandler } from '../src/audit-events.handler.js';
import { EventIdGuard } from '../src/event-ids.guard.js';
import type { EventRow } from '../src/events.row.js';
import { createIngesterMetrics } from '../src/metrics.js';

const GH = 'ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8';
const AWS = 'AKIAIOSFODNN7EXAMPLE';
const PASSWORD = 'hunter2-correct-horse-battery';

function event(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schema_version: 1,
    event_id: randomUUID(),
    ts: new Date().toISOString(),
    kind: 'tool_call',
    source: { type: 'sdk', id: 'sdk-1', version: '0.1.0' },
    client: { id: `client ${GH}` },
    server: { name: 'filesystem', transport: 'stdio' },
    method: 'tools/call',
    tool: { name: 'read_file' },
    outcome: 'ok',
    duration_ms: 12,
    request_bytes: 10,
    response_bytes: 20,
    args: { password: PASSWORD, note: `key ${AWS}` },
    ...over,
  };
}

let offset = 0;
function message(value: string | Buffer, key: string | null = `client ${GH}`): ConsumedMessage {
  return {
    topic: 'events',
    partition: 0,
    offset: String(offset++),
    key: key === null ? null : Buffer.from(key),
    value: Buffer.from(value),
    headers: {},
    timestamp: String(Date.now()),
  };
}

function harness(failFirstRow = false) {
  const sent: OutgoingMessage[] = [];
  const producer: AuditProducer = {
    connect: async () => undefined,
    send: async (_topic, messages) => void sent.push(...messages),
    disconnect: async () => undefined,
    isConnected: () => true,
  };
  // ClickHouse echoes the value it could not parse in its error message.
  const writer = {
    add: async (rows: EventRow[]) =>
      failFirstRow && rows.length > 0
        ? [{ index: 0, error: new Error(`Cannot parse input: expected ',' before: 'client ${GH}'`) }]
        : [],
  } as unknown as BatchWriter<EventRow>;
  // No id stored yet: every valid event is new (the guard's own logic is tested in event-ids.guard.test).
  const guard = new EventIdGuard(
    { lookup: async () => [], storedRows: async () => [] },
    async () => undefined,
  );
  const handle = createAuditEventsHandler({
    writer,
    guard,
    recordConflicts: async () => undefined,
    isRetryable: () => false,
    producer,
    redactor: createEventRedactor({ fingerprintKey: 'ingester-unit-key-0123456789' }),
    dlqTopic: 'dlq',
    log: createLogger('ingester-unit', { level: 'silent' }),
    metrics: createIngesterMetrics(createRegistry('ingester-unit', { defaultMetrics: false })),
  });
  const ctx: BatchContext = {
    heartbeat: async () => undefined,
    isRunning: () => true,
    isStale: () => false,
    highWatermark: '0',
  };
  return { sent, run: (msgs: ConsumedMessage[]) => handle(msgs, ctx) };
}

function assertNoSecret(m: OutgoingMessage, where: string) {
  const parts: Buffer[] = [Buffer.from(m.key ?? ''), Buffer.from(m.value)];
  for (const [k, v] of Object.entries(m.headers ?? {})) parts.push(Buffer.from(k), Buffer.from(v));
  const b = Buffer.concat(parts);
  for (const s of [GH, AWS, PASSWORD])
    assert.equal(b.includes(s), false, `${where} holds ${s.slice(0, 6)}… in clear`);
}

test('dead letters of every rejection carry no secret in clear (value, key, headers)', async () => {
  const h = harness();
  await h.run([
    message(JSON.stringify(event({ duration_ms: -5 }))),
    message(JSON.stringify(event({ args: { blob: 'x'.repeat(70 * 1024), password: PASSWORD } }))),
    message(JSON.stringify(event({ ts: '2999-01-01T00:00:00.000Z' }))),
    message(`{"client":{"id":"${GH}"},"args":{"password":"${PASSWORD}","k":"${AWS}"`),
    message(JSON.stringify([{ password: PASSWORD, k: AWS }])),
  ]);
  assert.equal(h.sent.length, 5);
  h.sent.forEach((m, i) => assertNoSecret(m, `dead letter ${i}`));
});

test('a row ClickHouse refuses is dead-lettered without the secrets its error echoes', async () => {
  const h = harness(true);
  await h.run([message(JSON.stringify(event()))]);
  assert.equal(h.sent.length, 1);
  assert.equal(String(h.sent[0]!.headers!['mcp-audit-dlq-code']), 'AUDIT_ERR_CLICKHOUSE_REJECTED');
  assertNoSecret(h.sent[0]!, 'dead letter');
});
