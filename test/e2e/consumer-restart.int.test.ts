import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBatchConsumer, createKafka } from '@mcp-audit/kafka';
import { createLogger } from '@mcp-audit/service-kit';
import { stackEnv, suffix, waitFor } from '../lib/env.js';

const env = stackEnv();
const brokers = (env.MCP_AUDIT_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

// kafkajs does not restart a consumer after a non-retriable crash (a handler error, or "Failed to find
// group coordinator" right after a broker restart): the process stays up with its pipeline stopped.
// The live ingester was found in that state after a broker restart; packages/kafka now starts a new
// consumer itself. A handler error marked non-retriable is the deterministic way to get that crash.
test('a consumer kafkajs gives up on is restarted: the failed chunk is redelivered, nothing lost', async () => {
  const log = createLogger('consumer-restart', { level: 'silent' });
  const kafka = createKafka(
    {
      brokers,
      clientId: 'e2e-restart',
      ssl: false,
      replicationFactor: 1,
      connectionTimeoutMs: 3000,
      requestTimeoutMs: 10000,
    },
    log,
  );
  const topic = `e2e.restart.${suffix()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  const producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
  await producer.connect();
  const N = 200;
  await producer.send({
    topic,
    acks: -1,
    messages: Array.from({ length: N }, (_, i) => ({ key: 'k', value: String(i) })),
  });

  const seen = new Set<string>();
  let calls = 0;
  let failed = 0;
  const consumer = createBatchConsumer({
    kafka,
    groupId: `e2e-restart-${suffix()}`,
    topic,
    log,
    chunkSize: 50,
    handler: async (messages) => {
      calls += 1;
      if (calls === 2) {
        failed = messages.length;
        throw Object.assign(new Error('handler failed (test)'), { retriable: false });
      }
      for (const m of messages) seen.add(m.value!.toString());
    },
  });
  try {
    await consumer.start();
    await waitFor(() => seen.size === N, {
      what: `all ${N} messages handled after the restart`,
      timeoutMs: 60_000,
    });
    assert.equal(failed, 50, 'the second chunk failed once');
    assert.ok(calls > N / 50, 'the failed chunk was handled again');
    const h = await waitFor(
      () => {
        const s = consumer.health();
        return s.ok ? s : undefined;
      },
      { what: 'consumer healthy again' },
    );
    assert.ok((h.details.restarts as number) >= 1, 'restarted by packages/kafka, not by kafkajs');
  } finally {
    await consumer.stop();
    await producer.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
});
