import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Kafka, logLevel, type Admin, type KafkaMessage } from 'kafkajs';
import { buildCollector, createTokenStore, hashToken, generateToken } from '@mcp-audit/collector';
import { generateKeyPairSync } from 'node:crypto';
import {
  createKafka,
  createOpener,
  createProducer,
  createSealer,
  DLQ_HEADERS,
  type AuditProducer,
} from '@mcp-audit/kafka';
import { eventKeyFor } from '@mcp-audit/schema';
import { createEventRedactor } from '@mcp-audit/redaction';
import { createLogger, createRegistry } from '@mcp-audit/service-kit';
import { brokers, createTestTopics, kafka, makeEvent, rng, suffix, waitFor } from '../lib/index.js';

const log = createLogger('collector-test', { level: 'silent' });
const dlqKeys = generateKeyPairSync('x25519');
const dlqOpener = createOpener([dlqKeys.privateKey]);
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

const groups: string[] = [];

after(async () => {
  await producer.disconnect();
  await admin.deleteGroups(groups).catch(() => undefined);
  await admin.deleteTopics({ topics: [topics.events, topics.dlq] }).catch(() => undefined);
  await admin.disconnect();
});

function build(
  over: {
    bodyLimitBytes?: number;
    rateLimitPerMinute?: number;
    authFailuresPerMinute?: number;
    producer?: AuditProducer;
  } = {},
) {
  return buildCollector(
    {
      eventsTopic: topics.events,
      dlqTopic: topics.dlq,
      bodyLimitBytes: over.bodyLimitBytes ?? 1024 * 1024,
      maxEventsPerRequest: 1000,
      rateLimitPerMinute: over.rateLimitPerMinute ?? 1000,
      authFailuresPerMinute: over.authFailuresPerMinute ?? 1000,
      requestTimeoutMs: 10_000,
    },
    {
      producer: over.producer ?? producer,
      dlqSealer: createSealer(dlqKeys.publicKey),
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

/** High-water offsets of both topics, to show a refused request produced nothing anywhere. */
const offsets = async () => ({ events: await endOffset(topics.events), dlq: await endOffset(topics.dlq) });

/** The messages of a (one-partition) test topic from `from` on, once `count` of them are there. */
async function readTopic(topic: string, from: number, count: number): Promise<KafkaMessage[]> {
  const groupId = `e2e-collector-${suffix()}`;
  groups.push(groupId);
  const consumer = kafka().consumer({ groupId, maxWaitTimeInMs: 100 });
  const got: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (Number(message.offset) >= from) got.push(message);
      },
    });
    await waitFor(() => got.length >= count, { timeoutMs: 30_000, what: `${count} messages on ${topic}` });
  } finally {
    await consumer.disconnect();
  }
  return got;
}

const auth = { authorization: `Bearer ${ingestToken}` };

const events = (n: number, src = sourceId) => {
  const r = rng(3);
  return Array.from({ length: n }, (_, i) => makeEvent(r, i, { sourceId: src }));
};

test('missing, wrong and wrong-scope tokens get 401/403 and produce nothing', async () => {
  const app = build();
  const before = await offsets();
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
  assert.deepEqual(await offsets(), before, 'nothing reached Kafka, not even the DLQ');
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

test('a body over the limit gets 413 and produces nothing', async () => {
  const app = build({ bodyLimitBytes: 4096 });
  const before = await offsets();
  const res = await app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestToken}` },
    payload: JSON.stringify(events(20)),
  });
  assert.equal(res.statusCode, 413, res.body);
  assert.equal(res.json().error, 'AUDIT_ERR_BODY_TOO_LARGE');
  assert.deepEqual(await offsets(), before, 'nothing reached Kafka');
  await app.close();
});

test('a source over its rate gets 429, before its body is read, and produces nothing', async () => {
  const app = build({ rateLimitPerMinute: 3 });
  const send = (payload: string, type = 'application/x-ndjson') =>
    app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'content-type': type, ...auth },
      payload,
    });
  const one = () =>
    events(1)
      .map((e) => JSON.stringify(e))
      .join('\n');
  for (let i = 0; i < 3; i++) assert.equal((await send(one())).statusCode, 200);
  const before = await offsets();
  // A valid body, then a malformed JSON array: both 429, the second never parsed (else a 400).
  for (const [payload, type] of [
    [one(), 'application/x-ndjson'],
    ['[{"broken', 'application/json'],
  ] as const) {
    const limited = await send(payload, type);
    assert.equal(limited.statusCode, 429, limited.body);
    assert.equal(limited.json().error, 'AUDIT_ERR_RATE_LIMITED');
    assert.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After is set');
  }
  assert.deepEqual(await offsets(), before, 'nothing reached Kafka');
  await app.close();
});

test('an address that keeps failing authentication gets 429 and produces nothing', async () => {
  const app = build({ authFailuresPerMinute: 2 });
  const before = await offsets();
  const send = (authorization: string) =>
    app.inject({
      method: 'POST',
      url: '/v1/events',
      remoteAddress: '198.51.100.9',
      headers: { 'content-type': 'application/json', authorization },
      payload: JSON.stringify(events(1)),
    });
  assert.equal((await send('Bearer mcpa_guess-1')).statusCode, 401);
  assert.equal((await send('Bearer mcpa_guess-2')).statusCode, 401);
  const limited = await send('Bearer mcpa_guess-3');
  assert.equal(limited.statusCode, 429, limited.body);
  assert.equal(limited.headers['retry-after'], '30');
  // Throttled means the token is not even checked: a right one waits too.
  assert.equal((await send(auth.authorization)).statusCode, 429);
  assert.deepEqual(await offsets(), before, 'nothing reached Kafka');
  await app.close();
});

test('JSON array: a duplicate-key event is rejected exactly as over NDJSON, and dead-lettered as sent', async () => {
  const app = build();
  // JSON.parse would keep the last client.id, other readers of the raw copy the first.
  const hostile = JSON.stringify(events(1)[0]).replace(`"client":{"id":"`, `"client":{"id":"victim","id":"`);
  assert.notEqual(hostile, JSON.stringify(events(1)[0]));
  const before = await offsets();
  const results = [];
  for (const [type, payload] of [
    ['application/json', `[${hostile}]`],
    ['application/x-ndjson', `${hostile}\n`],
  ] as const) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'content-type': type, ...auth },
      payload,
    });
    assert.equal(res.statusCode, 400, `${type}: ${res.body}`);
    results.push(res.json());
  }
  assert.deepEqual(results[0], results[1]);
  assert.equal(results[0].results[0].code, 'AUDIT_ERR_INVALID_EVENT');
  assert.match(results[0].results[0].reason, /client\.id: duplicate key/);
  assert.equal(await endOffset(topics.events), before.events, 'nothing reached the events topic');
  const dead = await readTopic(topics.dlq, before.dlq, 2);
  // The bytes as sent are kept for forensics and replay, sealed to the replay key (the readable
  // value is the redacted preview).
  assert.deepEqual(
    dead.map((m) =>
      dlqOpener
        .open(m.headers![DLQ_HEADERS.sealed] as Buffer, String(m.headers![DLQ_HEADERS.keyId]))
        .toString('utf8'),
    ),
    [hostile, hostile],
  );
  await app.close();
});

test('JSON array: a valid event reaches Kafka byte-equal to what was posted', async () => {
  const app = build();
  const [a, b] = events(2);
  // Spacing, key order, escapes and an unknown field: all lost by a parse-and-serialize round trip.
  const first = `{ "x_unknown" : { "nested" : [1, 2.50, "\\u00e9 \u00e9 ✓"] },\n\t${JSON.stringify(a).slice(1)}`;
  const second = JSON.stringify(b, null, 2);
  const before = await endOffset(topics.events);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/json; charset=utf-8', ...auth },
    payload: Buffer.from(`[\n  ${first} ,${second}\n]`, 'utf8'),
  });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.json().accepted, 2);
  const got = await readTopic(topics.events, before, 2);
  assert.equal(got.length, 2);
  assert.ok(got[0]!.value!.equals(Buffer.from(first, 'utf8')), got[0]!.value!.toString());
  assert.ok(got[1]!.value!.equals(Buffer.from(second, 'utf8')), got[1]!.value!.toString());
  assert.equal(got[0]!.key?.toString(), eventKeyFor((a!.client as { id: string }).id));
  await app.close();
});

test('Kafka not connected: 503 with Retry-After, never a 2xx', async () => {
  // A producer that was never connected fails before any network traffic (kafkajs checks first).
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
  const app = build({ producer: down });
  const before = await offsets();
  const res = await app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/json', ...auth },
    payload: JSON.stringify(events(2)),
  });
  assert.equal(res.statusCode, 503);
  assert.equal(res.headers['retry-after'], '5');
  assert.deepEqual(await offsets(), before);
  await app.close();
});

/**
 * A TCP relay to the real broker that can go away like a crashed broker: open connections are
 * reset and new ones refused. kafkajs connects to the addresses the broker advertises, so every
 * socket it opens is sent through the relay by a socketFactory.
 */
async function brokerRelay() {
  const [host, port] = brokers[0]!.split(':') as [string, string];
  const open = new Set<Socket>();
  const track = (s: Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => undefined);
  };
  const server: Server = createServer((client) => {
    const upstream = connect({ host, port: Number(port) });
    track(client);
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const relayPort = (server.address() as AddressInfo).port;
  return {
    socketFactory: ({ onConnect }: { onConnect: () => void }) => {
      const s = connect({ host: '127.0.0.1', port: relayPort }, onConnect);
      s.setKeepAlive(true, 60_000);
      return s;
    },
    async goAway() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of open) s.resetAndDestroy();
      await closed;
    },
  };
}

test('Kafka goes away under a connected producer: 503 with Retry-After within seconds, never a 2xx', async () => {
  const relay = await brokerRelay();
  const viaRelay = createProducer(
    new Kafka({
      clientId: `collector-relay-${suffix()}`,
      brokers,
      socketFactory: relay.socketFactory,
      connectionTimeout: 300,
      requestTimeout: 1000,
      retry: { initialRetryTime: 100, retries: 2, maxRetryTime: 500 },
      logLevel: logLevel.NOTHING,
    }),
    { timeoutMs: 1000 },
  );
  await viaRelay.connect();
  const app = build({ producer: viaRelay });
  const post = () =>
    app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'content-type': 'application/json', ...auth },
      payload: JSON.stringify(events(2)),
    });
  try {
    const before = await offsets();
    const up = await post();
    assert.equal(up.statusCode, 200, up.body);
    assert.equal(await endOffset(topics.events), before.events + 2, 'the relay reaches the real broker');

    await relay.goAway();
    const t0 = Date.now();
    const res = await post();
    const ms = Date.now() - t0;
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.json().error, 'AUDIT_ERR_KAFKA_UNAVAILABLE');
    // The caller learns to come back, never which brokers or topics stand behind the collector (the
    // wire error itself, a refused reconnect or reset, is in the collector's log).
    assert.match(res.json().message, /unavailable; nothing was accepted, retry after 5 s/);
    for (const b of brokers) assert.ok(!String(res.body).includes(b), 'no broker address in the answer');
    assert.ok(!String(res.body).includes(topics.events), 'no topic name in the answer');
    assert.equal(res.headers['retry-after'], '5');
    assert.ok(ms < 15_000, `answered in ${ms} ms`);
    assert.equal(await endOffset(topics.events), before.events + 2, 'nothing more reached Kafka');
  } finally {
    await app.close();
    await viaRelay.disconnect().catch(() => undefined);
  }
});
