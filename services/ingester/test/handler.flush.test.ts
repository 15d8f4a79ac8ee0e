import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { AuditProducer, BatchContext, ConsumedMessage } from '@mcp-audit/kafka';
import { createEventRedactor } from '@mcp-audit/redaction';
import { BatchWriter, createLogger, createRegistry } from '@mcp-audit/service-kit';
import { createAuditEventsHandler } from '../src/audit-events.handler.js';
import { EventIdGuard, type StoredId } from '../src/event-ids.guard.js';
import type { EventRow } from '../src/events.row.js';
import { createIngesterMetrics } from '../src/metrics.js';

const log = createLogger('ingester-unit', { level: 'silent' });

function messages(n: number, partition: number): ConsumedMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    topic: 't',
    partition,
    offset: String(i),
    key: null,
    value: Buffer.from(
      JSON.stringify({
        schema_version: 1,
        event_id: randomUUID(),
        ts: new Date().toISOString(),
        kind: 'tool_call',
        source: { type: 'sdk', id: 'sdk-1', version: '0.1.0' },
        client: { id: `client-${i % 7}`, ip: '10.0.0.1' },
        server: { name: 'filesystem', transport: 'stdio' },
        method: 'tools/call',
        tool: { name: 'read_file' },
        outcome: 'ok',
        duration_ms: 12,
        request_bytes: 10,
        response_bytes: 20,
        args: { path: `/srv/${i}` },
      }),
    ),
    headers: {},
    timestamp: String(Date.now()),
  }));
}

const ctx: BatchContext = {
  heartbeat: async () => undefined,
  isRunning: () => true,
  isStale: () => false,
  highWatermark: '0',
};

/** A real writer whose own flush interval is far away: only the handler's early flush writes. */
function harness(opts: { flushWhenAllWaitRows?: number; lookup?: (ids: string[]) => Promise<StoredId[]> }) {
  const inserted: EventRow[][] = [];
  const writer = new BatchWriter<EventRow>({
    name: 'events',
    insert: async (rows) => void inserted.push(rows),
    isRetryable: () => true,
    maxRows: 100_000,
    flushMs: 60_000,
    maxBufferedRows: 1_000_000,
    log,
  });
  const producer: AuditProducer = {
    connect: async () => undefined,
    send: async () => undefined,
    disconnect: async () => undefined,
    isConnected: () => true,
  };
  const guard = new EventIdGuard(
    { lookup: opts.lookup ?? (async () => []), storedRows: async () => [] },
    async () => undefined,
  );
  const handle = createAuditEventsHandler({
    writer,
    guard,
    recordConflicts: async () => undefined,
    isRetryable: (err) => (err as Error).message === 'socket hang up',
    producer,
    redactor: createEventRedactor({ fingerprintKey: 'ingester-unit-key-0123456789' }),
    dlqTopic: 'dlq',
    log,
    metrics: createIngesterMetrics(createRegistry('ingester-unit', { defaultMetrics: false })),
    ...(opts.flushWhenAllWaitRows === undefined ? {} : { flushWhenAllWaitRows: opts.flushWhenAllWaitRows }),
  });
  return { writer, inserted, handle };
}

const settledWithin = async (p: Promise<unknown>, ms: number): Promise<boolean> =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

test('chunks of one fetch are written in one insert as soon as all of them wait on the writer', async () => {
  const h = harness({ flushWhenAllWaitRows: 100 });
  const all = Promise.all([h.handle(messages(80, 0), ctx), h.handle(messages(90, 1), ctx)]);
  assert.equal(await settledWithin(all, 5_000), true, 'written without the 60 s flush interval');
  assert.deepEqual(
    h.inserted.map((rows) => rows.length),
    [170],
  );
  await h.writer.stop();
});

test('below the row count (a trickle) and without the option, the writer’s interval decides', async () => {
  for (const h of [harness({ flushWhenAllWaitRows: 100 }), harness({})]) {
    const one = h.handle(messages(50, 0), ctx);
    assert.equal(await settledWithin(one, 300), false, 'waits for the writer');
    await h.writer.flush();
    await one;
    assert.deepEqual(
      h.inserted.map((rows) => rows.length),
      [50],
    );
  }
});

test('an event id check that fails with a retryable error is retried in place', async () => {
  let calls = 0;
  const h = harness({
    flushWhenAllWaitRows: 1,
    lookup: async () => {
      if (calls++ === 0) throw new Error('socket hang up');
      return [];
    },
  });
  await h.handle(messages(10, 0), ctx);
  assert.equal(calls, 2);
  assert.deepEqual(
    h.inserted.map((rows) => rows.length),
    [10],
  );
  const broken = harness({
    lookup: async () => {
      throw new Error('syntax error');
    },
  });
  await assert.rejects(broken.handle(messages(5, 0), ctx), /syntax error/);
});
