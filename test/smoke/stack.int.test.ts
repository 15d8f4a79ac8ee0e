import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { createClient } from '@clickhouse/client';
import { createClickHouse, sql } from '@mcp-audit/clickhouse';
import { createKafka, ensureTopics, loadTopicDefs } from '@mcp-audit/kafka';
import { createLogger } from '@mcp-audit/service-kit';
import { stackEnv, need, suffix, waitFor } from '../lib/env.js';
import { makeEvent, rng } from '../lib/events.js';
import { validateEvent } from '@mcp-audit/schema';

const env = stackEnv();
const brokers = (env.MCP_AUDIT_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const chUrl = env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';

test('kafka: an event produced to mcp.audit.events.v1 is consumed back byte-equal', async () => {
  const kafka = new Kafka({ clientId: `smoke-${suffix()}`, brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
  const consumer = kafka.consumer({ groupId: `smoke-${suffix()}` });
  // Idempotent, as at every service's start-up.
  const log = createLogger('smoke', { level: 'silent' });
  const ours = createKafka(
    {
      brokers,
      clientId: 'smoke',
      ssl: false,
      replicationFactor: 1,
      connectionTimeoutMs: 3000,
      requestTimeoutMs: 10000,
    },
    log,
  );
  await ensureTopics(ours, loadTopicDefs(), { maxReplicationFactor: 1 });
  await ensureTopics(ours, loadTopicDefs(), { maxReplicationFactor: 1 });
  const key = `smoke-client-${suffix()}`;
  // A valid v1 event (a running ingester stores it instead of dead-lettering test noise), with
  // bytes a lossy layer would mangle: multi-byte UTF-8 in several widths, escapes.
  const event = {
    ...makeEvent(rng(7), 0, { sourceId: `smoke-${suffix()}`, clientPrefix: key }),
    client: { id: key },
    labels: { note: 'héllo ✓ 𝄞 \\ "quoted"' },
  };
  const value = Buffer.from(JSON.stringify(event), 'utf8');
  assert.ok(validateEvent(JSON.parse(value.toString('utf8'))).ok, 'the smoke event is a valid v1 event');
  await producer.connect();
  try {
    const [meta] = await producer.send({
      topic: 'mcp.audit.events.v1',
      acks: -1,
      messages: [{ key, value }],
    });
    assert.ok(meta, 'producer returned record metadata');
    await consumer.connect();
    await consumer.subscribe({ topic: 'mcp.audit.events.v1', fromBeginning: false });
    let got: Buffer | null | undefined;
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (message.key?.toString() === key) got = message.value;
      },
    });
    consumer.seek({ topic: 'mcp.audit.events.v1', partition: meta.partition, offset: meta.baseOffset! });
    const received = await waitFor(() => got, { what: 'the produced message', timeoutMs: 30_000 });
    assert.ok(Buffer.from(received as Buffer).equals(value), 'consumed bytes equal produced bytes');
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
});

test('clickhouse: writer inserts, analyst reads back, analyst is refused insert/alter/drop', async () => {
  const writer = createClient({
    url: chUrl,
    username: need(env, 'MCP_AUDIT_CLICKHOUSE_WRITER_USER'),
    password: need(env, 'MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD'),
    log: { level: 127 as never },
  });
  const analyst = createClient({
    url: chUrl,
    username: need(env, 'MCP_AUDIT_CLICKHOUSE_ANALYST_USER'),
    password: need(env, 'MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD'),
    log: { level: 127 as never },
  });
  const analystView = createClickHouse({
    url: chUrl,
    username: need(env, 'MCP_AUDIT_CLICKHOUSE_ANALYST_USER'),
    password: need(env, 'MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD'),
  });
  const id = randomUUID();
  const clientId = `smoke-${suffix()}`;
  const now = Math.floor(Date.now() / 1000);
  try {
    await writer.insert({
      table: 'mcp_audit.events',
      format: 'JSONEachRow',
      values: [
        {
          event_id: id,
          ts: now,
          ts_ms: 123,
          ingested_at: now,
          ver: 4294967295 - now,
          schema_version: 1,
          kind: 'tool_call',
          source_type: 'gateway',
          source_id: 'smoke',
          source_version: '0.0.0',
          client_id: clientId,
          server_name: 'smoke-server',
          server_transport: 'stdio',
          method: 'tools/call',
          tool_name: 'echo',
          outcome: 'ok',
          duration_ms: 5,
          request_bytes: 10,
          response_bytes: 20,
          args: '{}',
          raw: '{}',
        },
      ],
    });
    // Read back through the project's client: values enter SQL only through the literal encoder.
    const rows = await analystView.query<{ id: string; client_id: string; tool_name: string }>(
      sql`SELECT toString(event_id) AS id, client_id, tool_name FROM mcp_audit.events WHERE client_id = ${clientId} AND event_id = toUUID(${id})`,
    );
    assert.deepEqual(rows, [{ id, client_id: clientId, tool_name: 'echo' }]);

    const refused = async (what: string, fn: () => Promise<unknown>, pattern: RegExp) => {
      await assert.rejects(fn, pattern, `analyst must be refused: ${what}`);
    };
    await refused(
      'insert',
      () =>
        analyst.insert({
          table: 'mcp_audit.events',
          format: 'JSONEachRow',
          values: [{ event_id: randomUUID() }],
        }),
      /readonly/i,
    );
    await refused(
      'alter',
      () => analyst.command({ query: 'ALTER TABLE mcp_audit.events DELETE WHERE 1' }),
      /readonly/i,
    );
    await refused('drop', () => analyst.command({ query: 'DROP TABLE mcp_audit.events' }), /readonly/i);
    await refused(
      'truncate',
      () => analyst.command({ query: 'TRUNCATE TABLE mcp_audit.events' }),
      /readonly/i,
    );
    // A row with a column the table lacks fails loudly instead of being silently trimmed.
    await assert.rejects(
      () =>
        writer.insert({
          table: 'mcp_audit.events',
          format: 'JSONEachRow',
          values: [{ event_id: randomUUID(), not_a_column: 1 }],
        }),
      /not_a_column|Unknown field/i,
    );
    // And the writer may insert but never rewrite history.
    await assert.rejects(
      () => writer.command({ query: 'ALTER TABLE mcp_audit.events DELETE WHERE 1' }),
      /DDL queries are prohibited/,
    );
    await assert.rejects(
      () => writer.command({ query: 'DROP TABLE mcp_audit.events' }),
      /DDL queries are prohibited/,
    );
  } finally {
    await writer.close();
    await analyst.close();
    await analystView.close();
  }
});

test('clickhouse: there is no password-less default user', async () => {
  const res = await fetch(`${chUrl}/?query=SELECT%201`);
  assert.notEqual(res.status, 200);
  assert.match(await res.text(), /Unknown user default|Authentication failed/);
});
