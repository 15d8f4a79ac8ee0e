import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { Admin, KafkaMessage } from 'kafkajs';
import { sql } from '@mcp-audit/clickhouse';
import { buildCollector, createTokenStore, generateToken, hashToken } from '@mcp-audit/collector';
import {
  createKafka,
  createProducer,
  createSealer,
  loadDlqPublicKey,
  type AuditProducer,
} from '@mcp-audit/kafka';
import { createEventRedactor } from '@mcp-audit/redaction';
import { eventKeyFor } from '@mcp-audit/schema';
import { createAuditEmitter } from '@mcp-audit/sdk';
import { createKafkaSink } from '@mcp-audit/sdk/kafka';
import { createLogger, createRegistry } from '@mcp-audit/service-kit';
import {
  analyst,
  brokers,
  createTestTopics,
  env,
  ingesterEnv,
  kafka,
  REPO_ROOT,
  startService,
  suffix,
  waitFor,
  waitForStored,
  type ServiceProcess,
} from '../lib/index.js';

// Secrets the redactor knows by pattern: none may reach a topic in clear.
const GH = 'ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8';
const AWS = 'AKIAIOSFODNN7EXAMPLE';
const PASSWORD = 'hunter2-correct-horse-battery';
const SECRETS = [GH, AWS, PASSWORD];
const REDACTION_KEY = env.MCP_AUDIT_REDACTION_KEY ?? 'test-redaction-key-0123456789';
const CLI = `${REPO_ROOT}services/ingester/dist/src/dlq.cli.js`;
const log = createLogger('dlq-test', { level: 'silent' });

const tag = `dlq-${suffix()}`;
const sourceId = tag;
const token = generateToken();
const keyDir = `${REPO_ROOT}.local/test-logs/dlq-keys-${tag}`;
let admin: Admin;
let producer: AuditProducer;
let topics: { events: string; dlq: string };
let ingester: ServiceProcess | undefined;

before(async () => {
  admin = kafka().admin();
  await admin.connect();
  topics = await createTestTopics(admin, 'dlq', 6);
  producer = createProducer(
    createKafka(
      {
        brokers,
        clientId: 'dlq-test',
        ssl: false,
        replicationFactor: 1,
        connectionTimeoutMs: 3000,
        requestTimeoutMs: 10000,
      },
      log,
    ),
  );
  await producer.connect();
  mkdirSync(`${REPO_ROOT}.local/test-logs`, { recursive: true });
  const kg = spawnSync(process.execPath, [CLI, 'keygen', '--out', keyDir], { encoding: 'utf8' });
  assert.equal(kg.status, 0, kg.stderr);
});

after(async () => {
  await ingester?.stop();
  await producer?.disconnect();
  if (topics) await admin.deleteTopics({ topics: [topics.events, topics.dlq] }).catch(() => undefined);
  await admin?.disconnect();
});

function collector() {
  return buildCollector(
    {
      eventsTopic: topics.events,
      dlqTopic: topics.dlq,
      bodyLimitBytes: 4 << 20,
      maxEventsPerRequest: 100,
      rateLimitPerMinute: 1000,
      authFailuresPerMinute: 1000,
      requestTimeoutMs: 10_000,
    },
    {
      producer,
      tokens: createTokenStore([
        { id: 't', source_id: sourceId, sha256: hashToken(token), scopes: ['ingest'], disabled: false },
      ]),
      redactor: createEventRedactor({ fingerprintKey: REDACTION_KEY }),
      dlqSealer: createSealer(loadDlqPublicKey(`${keyDir}/dlq-public.pem`)),
      log,
      registry: createRegistry('dlq-test', { defaultMetrics: false }),
    },
  );
}

function event(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schema_version: 1,
    event_id: randomUUID(),
    ts: new Date().toISOString(),
    kind: 'tool_call',
    source: { type: 'gateway', id: sourceId, version: '0.1.0' },
    client: { id: `${tag}-client ${GH}` },
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

/** Every message of a topic up to its current end. */
async function readAll(topic: string, n: number): Promise<Array<KafkaMessage & { partition: number }>> {
  const out: Array<KafkaMessage & { partition: number }> = [];
  const consumer = kafka().consumer({ groupId: `e2e-dlq-read-${suffix()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message, partition }) => void out.push({ ...message, partition }),
  });
  try {
    await waitFor(async () => (out.length >= n ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: `${n} messages on ${topic}`,
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

function assertNoSecret(m: KafkaMessage, where: string) {
  const parts: Buffer[] = [m.key ?? Buffer.alloc(0), m.value ?? Buffer.alloc(0)];
  for (const [k, v] of Object.entries(m.headers ?? {})) parts.push(Buffer.from(k), Buffer.from(String(v)));
  for (const h of Object.values(m.headers ?? {})) if (Buffer.isBuffer(h)) parts.push(h);
  const bytes = Buffer.concat(parts);
  for (const s of SECRETS)
    assert.equal(bytes.includes(s), false, `${where} holds ${s.slice(0, 6)}… in clear`);
}

const cli = (args: string[], extra: Record<string, string | undefined> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '',
      MCP_AUDIT_KAFKA_BROKERS: brokers.join(','),
      MCP_AUDIT_DLQ_TOPIC: topics.dlq,
      MCP_AUDIT_EVENTS_TOPIC: topics.events,
      MCP_AUDIT_REDACTION_KEY: REDACTION_KEY,
      ...extra,
    },
  });

test('rejected events reach the real DLQ redacted; replay needs the private key and brings a fixed event into ClickHouse', async () => {
  const app = collector();
  const negative = event({ duration_ms: -5 });
  const lines = [
    JSON.stringify(negative),
    JSON.stringify(event({ args: { blob: 'x'.repeat(300 * 1024), password: PASSWORD, n: AWS } })),
    JSON.stringify(event({ ts: '2999-01-01T00:00:00.000Z' })),
    `{"schema_version":1,"client":{"id":"${GH}"},"args":{"password":"${PASSWORD}","k":"${AWS}"`,
    JSON.stringify(event({ source: { type: 'gateway', id: `gw ${GH}`, version: '1' } })),
  ];
  const res = await app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${token}` },
    payload: lines.join('\n'),
  });
  assert.equal(res.statusCode, 400, res.body);
  await app.close();

  // The ingester's own dead letters too: a poison produced straight to the events topic.
  await producer.send(topics.events, [
    { key: `raw ${GH}`, value: JSON.stringify(event({ duration_ms: -1, args: { token: PASSWORD } })) },
  ]);
  ingester = startService(
    'ingester',
    ingesterEnv(topics, `e2e-ingester-${suffix()}`, {
      MCP_AUDIT_REDACTION_KEY: REDACTION_KEY,
      MCP_AUDIT_DLQ_PUBLIC_KEY_FILE: `${keyDir}/dlq-public.pem`,
    }),
    tag,
  );

  const dead = await readAll(topics.dlq, lines.length + 1);
  assert.equal(dead.length, lines.length + 1);
  dead.forEach((m, i) => assertNoSecret(m, `dead letter ${i}`));
  for (const m of dead) {
    assert.equal(String(m.headers?.['mcp-audit-dlq-format']), '2');
    assert.ok(Buffer.isBuffer(m.headers?.['mcp-audit-dlq-sealed']), 'the original is kept, sealed');
  }
  const target = dead.find((m) => String(m.value).includes(String(negative.event_id)))!;
  const id = `${target.partition}:${target.offset}`;

  // list: counts and redacted previews, no key needed.
  const listed = cli(['list']);
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stdout, /6 dead letters/);
  assert.match(listed.stdout, /AUDIT_ERR_INVALID_EVENT/);
  for (const s of SECRETS) assert.equal(listed.stdout.includes(s), false);

  // Without the private key: a clear refusal, nothing sent.
  const before = await admin.fetchTopicOffsets(topics.events);
  const refused = cli(['replay', id, '--set', 'duration_ms=0']);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /MCP_AUDIT_DLQ_PRIVATE_KEY_FILE/);
  // A wrong private key cannot open it either.
  const otherDir = `${keyDir}-other`;
  assert.equal(spawnSync(process.execPath, [CLI, 'keygen', '--out', otherDir]).status, 0);
  const wrong = cli(['replay', id, '--set', 'duration_ms=0'], {
    MCP_AUDIT_DLQ_PRIVATE_KEY_FILE: `${otherDir}/dlq-private.pem`,
  });
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /sealed under key/);
  // Without a fix the event is still invalid, so it is not sent either.
  const unfixed = cli(['replay', id], { MCP_AUDIT_DLQ_PRIVATE_KEY_FILE: `${keyDir}/dlq-private.pem` });
  assert.equal(unfixed.status, 1);
  assert.match(unfixed.stderr, /still invalid.*duration_ms/);
  assert.deepEqual(await admin.fetchTopicOffsets(topics.events), before);

  // With the key and the fix: the normal path judges it again and stores it, redacted.
  const ok = cli(['replay', id, '--set', 'duration_ms=0'], {
    MCP_AUDIT_DLQ_PRIVATE_KEY_FILE: `${keyDir}/dlq-private.pem`,
  });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`replayed event ${String(negative.event_id)}`));
  const ch = analyst();
  try {
    await waitForStored(ch, sourceId, 1, 60_000);
    const rows = await ch.query<Record<string, unknown>>(
      sql`SELECT * FROM mcp_audit.events WHERE source_id = ${sourceId} LIMIT 1 BY event_id`,
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.event_id, negative.event_id);
    assert.equal(Number(rows[0]!.duration_ms), 0);
    const stored = JSON.stringify(rows[0]);
    for (const s of SECRETS) assert.equal(stored.includes(s), false, 'stored redacted');
  } finally {
    await ch.close();
  }
  const replayed = await readAll(topics.events, 2);
  const back = replayed.find((m) => m.headers?.['mcp-audit-replayed-from'] !== undefined)!;
  assertNoSecret(back, 'the replayed event');
});

test('the events key never carries a secret of client.id; collector and SDK give one client one key and one partition', async () => {
  const app = collector();
  const ids = [`${tag}-a ${GH}`, `${tag}-b`, `${tag}-c ${AWS}`];
  const payload = ids
    .flatMap((id) => [1, 2, 3].map(() => JSON.stringify(event({ client: { id } }))))
    .join('\n');
  const res = await app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${token}` },
    payload,
  });
  assert.equal(res.statusCode, 200, res.body);
  await app.close();

  const sdkTopic = `e2e.dlq.sdk.${suffix()}`;
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic: sdkTopic, numPartitions: 6, replicationFactor: 1 }],
  });
  try {
    const emitter = createAuditEmitter({
      sink: createKafkaSink({ brokers, topic: sdkTopic, logger: log }),
      source: { type: 'sdk', id: sourceId, version: '0.1.0' },
      redactionKey: REDACTION_KEY,
      logger: log,
    });
    for (const id of ids) {
      for (let i = 0; i < 3; i++) {
        emitter.emit({
          kind: 'tool_call',
          client: { id },
          server: { name: 'filesystem', transport: 'stdio' },
          method: 'tools/call',
          tool: { name: 'read_file' },
          outcome: 'ok',
          duration_ms: 1,
          request_bytes: 1,
          response_bytes: 1,
        });
      }
    }
    await emitter.close();

    // Leave out the first test's direct-produced poison (a producer that ignores the contract) and replay.
    const viaCollector = (await readAll(topics.events, 10)).filter(
      (m) => !m.headers?.['mcp-audit-replayed-from'] && !String(m.key).startsWith('raw '),
    );
    const viaSdk = await readAll(sdkTopic, 9);
    const redactor = createEventRedactor({ fingerprintKey: REDACTION_KEY });
    for (const [name, msgs] of [
      ['collector', viaCollector],
      ['sdk', viaSdk],
    ] as const) {
      const byClient = new Map<string, Set<string>>();
      for (const m of msgs) {
        assertNoSecret(m, `${name} message`);
        const clientId = (JSON.parse(String(m.value)) as { client: { id: string } }).client.id;
        if (!clientId.startsWith(tag)) continue;
        assert.equal(String(m.key), eventKeyFor(clientId), 'key = eventKeyFor(redacted client.id)');
        const seen = byClient.get(clientId) ?? new Set<string>();
        seen.add(`${String(m.key)}@${m.partition}`);
        byClient.set(clientId, seen);
      }
      assert.equal(byClient.size, ids.length, `${name}: every client seen`);
      for (const [c, seen] of byClient) assert.equal(seen.size, 1, `${name}: ${c} on one key and partition`);
    }
    // The same client, whoever produced it, has the same key.
    for (const id of ids) {
      const redactedId = redactor.redactString(id).value;
      const k = eventKeyFor(redactedId);
      assert.ok(viaCollector.some((m) => String(m.key) === k));
      assert.ok(viaSdk.some((m) => String(m.key) === k));
    }
  } finally {
    await admin.deleteTopics({ topics: [sdkTopic] }).catch(() => undefined);
  }
});
