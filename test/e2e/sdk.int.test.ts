import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import type { Admin } from 'kafkajs';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { buildCollector, createTokenStore, generateToken, hashToken } from '@mcp-audit/collector';
import { createKafka, createProducer, type AuditProducer } from '@mcp-audit/kafka';
import { createEventRedactor } from '@mcp-audit/redaction';
import { createLogger, createRegistry } from '@mcp-audit/service-kit';
import {
  auditMcpServer,
  createAuditEmitter,
  createCollectorSink,
  toolDefinitionHash,
  DROPPED_METHOD,
  type AuditEmitter,
  type AuditSink,
} from '@mcp-audit/sdk';
import { createKafkaSink } from '@mcp-audit/sdk/kafka';
import {
  REPO_ROOT,
  analyst,
  brokers,
  countBySource,
  createTestTopics,
  env,
  ingesterEnv,
  kafka,
  startService,
  suffix,
  waitFor,
  waitForStored,
  type ServiceProcess,
} from '../lib/index.js';

const log = createLogger('sdk-e2e', { level: 'silent' });
const REDACTION_KEY = env.MCP_AUDIT_REDACTION_KEY ?? 'test-redaction-key-0123456789';
let admin: Admin;
let ch: ClickHouse;
let topics: { events: string; dlq: string };
let ingester: ServiceProcess;

before(async () => {
  admin = kafka().admin();
  await admin.connect();
  topics = await createTestTopics(admin, 'sdk', 3);
  ch = analyst();
  ingester = startService(
    'ingester',
    ingesterEnv(topics, `e2e-sdk-${suffix()}`, { MCP_AUDIT_REDACTION_KEY: REDACTION_KEY }),
    `sdk-${suffix()}`,
  );
});

after(async () => {
  await ingester?.stop();
  await admin?.disconnect();
  await ch?.close();
});

function notesServer(): McpServer {
  const server = new McpServer({ name: 'notes', version: '2.0.0' });
  server.registerTool(
    'echo',
    { description: 'Echo the text back', inputSchema: { text: z.string(), token: z.string().optional() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  server.registerTool('fail', { description: 'Always fails' }, async () => {
    throw new Error('disk on fire');
  });
  return server;
}

async function connected(emitter: AuditEmitter, sourceId: string) {
  const server = auditMcpServer(notesServer(), { emitter, sourceId });
  const [clientT, serverT] = InMemoryTransport.createLinkedPair();
  await server.connect(serverT);
  const client = new Client({ name: 'e2e-client', version: '1.0.0' });
  await client.connect(clientT);
  return { server, client };
}

function emitterOn(
  sink: AuditSink,
  sourceId: string,
  extra: Partial<Parameters<typeof createAuditEmitter>[0]> = {},
) {
  return createAuditEmitter({
    sink,
    source: { type: 'sdk', id: sourceId, version: '0.1.0' },
    redactionKey: REDACTION_KEY,
    retryBackoffMs: { min: 100, max: 1_000 },
    closeTimeoutMs: 20_000,
    logger: log,
    ...extra,
  });
}

interface Row {
  kind: string;
  method: string;
  tool_name: string;
  tool_definition_hash: string;
  outcome: string;
  tool_is_error: number | null;
  rpc_error_code: number | null;
  client_id: string;
  client_agent: string;
  server_name: string;
  server_transport: string;
  source_type: string;
  args: string;
  response_digest: string;
  response_bytes: string;
}

async function rowsOf(sourceId: string): Promise<Row[]> {
  return ch.query<Row>(
    sql`SELECT kind, method, tool_name, tool_definition_hash, outcome, tool_is_error, rpc_error_code, client_id, client_agent, server_name, server_transport, source_type, args, response_digest, response_bytes FROM mcp_audit.events FINAL WHERE source_id = ${sourceId} ORDER BY event_id`,
  );
}

async function checkStoredConversation(sourceId: string, client: Client) {
  const listed = await client.listTools();
  await client.callTool({
    name: 'echo',
    arguments: { text: 'hello', token: 'ghp_0123456789abcdefghijklmnopqrstuvwxyzAB' },
  });
  await client.callTool({ name: 'fail', arguments: {} });
  await client.callTool({ name: 'missing', arguments: {} });
  // initialize + the tools/list request's event + one tool_list event per tool + three calls
  const expected = 1 + 1 + listed.tools.length + 3;
  await waitForStored(ch, sourceId, expected, 60_000);
  const rows = await rowsOf(sourceId);
  assert.equal(rows.length, expected);
  const echoHash = toolDefinitionHash(listed.tools.find((t) => t.name === 'echo')!);
  const byTool = (kind: string, name: string) => rows.find((r) => r.kind === kind && r.tool_name === name)!;
  assert.equal(rows.filter((r) => r.kind === 'session').length, 1);
  assert.equal(byTool('tool_list', 'echo').tool_definition_hash, echoHash);
  const echo = byTool('tool_call', 'echo');
  assert.equal(echo.method, 'tools/call');
  assert.equal(echo.outcome, 'ok');
  assert.equal(Number(echo.tool_is_error), 0);
  assert.equal(echo.tool_definition_hash, echoHash);
  assert.equal(echo.client_id, 'anonymous');
  assert.equal(echo.client_agent, 'e2e-client/1.0.0');
  assert.equal(echo.server_name, 'notes');
  assert.equal(echo.server_transport, 'stdio');
  assert.equal(echo.source_type, 'sdk');
  assert.match(echo.response_digest, /^[0-9a-f]{64}$/);
  assert.ok(Number(echo.response_bytes) > 0);
  assert.equal(JSON.parse(echo.args).text, 'hello');
  assert.match(JSON.parse(echo.args).token, /^\[REDACTED:/);
  const fail = byTool('tool_call', 'fail');
  assert.equal(fail.outcome, 'error');
  assert.equal(Number(fail.tool_is_error), 1);
  assert.equal(fail.rpc_error_code, null);
  assert.equal(byTool('tool_call', 'missing').outcome, 'error');
  assert.ok(!JSON.stringify(rows).includes('ghp_0123456789'), 'the secret never reached ClickHouse');
}

test('SDK-wrapped server → Kafka sink → ClickHouse, field by field', async () => {
  const sourceId = `sdk-kafka-${suffix()}`;
  const emitter = emitterOn(createKafkaSink({ brokers, topic: topics.events, logger: log }), sourceId);
  const { client, server } = await connected(emitter, sourceId);
  try {
    await checkStoredConversation(sourceId, client);
    assert.equal(emitter.stats().dropped, 0);
    assert.equal(emitter.stats().invalid, 0);
  } finally {
    await client.close();
    await server.close();
    await emitter.close();
  }
});

test('SDK-wrapped server → collector sink (HTTP, bearer token) → Kafka → ClickHouse', async () => {
  const sourceId = `sdk-collector-${suffix()}`;
  const token = generateToken();
  const producer: AuditProducer = createProducer(
    createKafka(
      {
        brokers,
        clientId: 'sdk-e2e-collector',
        ssl: false,
        replicationFactor: 1,
        connectionTimeoutMs: 3000,
        requestTimeoutMs: 10000,
      },
      log,
    ),
  );
  await producer.connect();
  const app = buildCollector(
    {
      eventsTopic: topics.events,
      dlqTopic: topics.dlq,
      bodyLimitBytes: 1024 * 1024,
      maxEventsPerRequest: 1000,
      rateLimitPerMinute: 10_000,
      requestTimeoutMs: 10_000,
    },
    {
      producer,
      tokens: createTokenStore([
        { id: 'sdk', source_id: sourceId, sha256: hashToken(token), scopes: ['ingest'], disabled: false },
      ]),
      redactor: createEventRedactor({ fingerprintKey: REDACTION_KEY }),
      log,
      registry: createRegistry('sdk-e2e-collector'),
    },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const emitter = emitterOn(createCollectorSink({ url, token }), sourceId);
  const { client, server } = await connected(emitter, sourceId);
  try {
    await checkStoredConversation(sourceId, client);
    assert.equal(emitter.stats().rejected, 0);
    assert.equal(emitter.stats().failedAttempts, 0);
  } finally {
    await client.close();
    await server.close();
    await emitter.close();
    await app.close();
    await producer.disconnect();
  }
});

function stack(...args: string[]) {
  execFileSync('bash', [`${REPO_ROOT}deploy/local/stack.sh`, ...args], { stdio: 'inherit' });
}

/**
 * `stack.sh up kafka`, retried: right after it launches the broker, stack.sh can mistake the
 * not-yet-exec'd launcher for a dead broker and exit 1 while Kafka is in fact starting. A second
 * `up` finds the running broker and waits until it is ready.
 */
function kafkaUp() {
  for (let attempt = 1; ; attempt++) {
    try {
      stack('up', 'kafka');
      return;
    } catch (err) {
      if (attempt >= 3) throw err;
      console.log(`stack.sh up kafka failed (attempt ${attempt}); retrying`);
    }
  }
}

/** Calls echo on every client in turn for `ms`; returns calls, failures and the slowest call. */
async function hammer(clients: Client[], ms: number) {
  let calls = 0;
  let failures = 0;
  let slowestMs = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // InMemoryTransport answers through promise jobs only; a real transport reads each request
    // from a socket. Yield to the event loop once per round, as socket I/O would, or the loop
    // would starve every timer and socket (the audit delivery included) for the whole phase.
    await new Promise((r) => setImmediate(r));
    for (const c of clients) {
      const t = performance.now();
      try {
        const r = await c.callTool({ name: 'echo', arguments: { text: `n${calls}` } });
        if (r.isError) failures++;
      } catch {
        failures++;
      }
      slowestMs = Math.max(slowestMs, performance.now() - t);
      calls++;
    }
  }
  return { calls, failures, slowestMs, perSecond: Math.round((calls * 1000) / ms) };
}

async function droppedReported(sourceId: string): Promise<number> {
  const [r] = await ch.query<{ n: string }>(
    sql`SELECT sum(toUInt64(label_values[indexOf(label_keys, 'mcp_audit.dropped_count')])) AS n FROM mcp_audit.events FINAL WHERE source_id = ${sourceId} AND method = ${DROPPED_METHOD}`,
  );
  return Number(r?.n ?? 0);
}

// NOTE: this stops the shared Kafka broker for a few seconds (other suites' producers retry);
// Kafka is always brought back in `finally`.
test('Kafka down: the wrapped server keeps answering; buffered events arrive afterwards and drops are reported', async () => {
  const bigId = `sdk-outage-big-${suffix()}`;
  const smallId = `sdk-outage-small-${suffix()}`;
  // One emitter with room for the whole outage, one whose buffer is small so drops happen.
  const big = emitterOn(createKafkaSink({ brokers, topic: topics.events, logger: log }), bigId, {
    capacity: 500_000,
    maxBufferBytes: 512 * 1024 * 1024,
  });
  const small = emitterOn(createKafkaSink({ brokers, topic: topics.events, logger: log }), smallId, {
    capacity: 1000,
  });
  const a = await connected(big, bigId);
  const b = await connected(small, smallId);
  const clients = [a.client, b.client];
  try {
    // Warm up: both producers connected before anything is measured (a small buffer fills while
    // the first connection is made).
    await a.client.callTool({ name: 'echo', arguments: { text: 'warm-up' } });
    await b.client.callTool({ name: 'echo', arguments: { text: 'warm-up' } });
    await waitForStored(ch, bigId, 2, 60_000);
    await waitForStored(ch, smallId, 2, 60_000);
    const healthy = await hammer(clients, 2_000);
    assert.equal(healthy.failures, 0);
    await waitForStored(ch, bigId, 2 + healthy.calls / 2, 60_000);
    await waitForStored(ch, smallId, 2 + healthy.calls / 2, 60_000);
    assert.equal(small.stats().dropped, 0, 'nothing dropped while Kafka is up');

    const sentBefore = [big.stats().sent, small.stats().sent];
    let outage: Awaited<ReturnType<typeof hammer>>;
    stack('down', 'kafka');
    try {
      outage = await hammer(clients, 4_000);
      // On a slow machine the small buffer may not be full yet: keep calling until it overflows.
      for (let extra = 0; small.stats().dropped === 0 && extra < 20; extra++) {
        const more = await hammer(clients, 1_000);
        outage = {
          calls: outage.calls + more.calls,
          failures: outage.failures + more.failures,
          slowestMs: Math.max(outage.slowestMs, more.slowestMs),
          perSecond: Math.round(((outage.calls + more.calls) * 1000) / (5_000 + extra * 1_000)),
        };
      }
      const [sb, ss] = [big.stats(), small.stats()];
      // Every call of the outage returned while its event was still undelivered: no call waited.
      assert.equal(sb.sent, sentBefore[0], 'nothing delivered while Kafka is down');
      assert.equal(ss.sent, sentBefore[1]);
      assert.equal(sb.buffered + sb.dropped, outage.calls / 2, 'big: every outage event is buffered');
      assert.equal(sb.dropped, 0);
      assert.equal(ss.buffered, 1000, 'small: the buffer is full');
      assert.equal(ss.buffered + ss.dropped, outage.calls / 2, 'small: the rest is counted as dropped');
    } finally {
      kafkaUp();
    }
    console.log(
      `SDK-wrapped server, 2 servers in turn over InMemoryTransport: ${healthy.perSecond} calls/s with Kafka up (slowest ${healthy.slowestMs.toFixed(1)} ms), ` +
        `${outage.perSecond} calls/s with Kafka down (slowest ${outage.slowestMs.toFixed(1)} ms); ${outage.failures} failed calls`,
    );
    assert.equal(outage.failures, 0, 'no call failed while Kafka was down');

    // initialize + warm-up call + the measured calls
    const perServer = 1 + (healthy.calls + outage.calls) / 2;
    const bigStored = await waitForStored(ch, bigId, 1 + perServer, 180_000);
    assert.equal(bigStored.distinct, 1 + perServer, 'every buffered event arrived');
    assert.equal(bigStored.visible, bigStored.distinct, 'no duplicate visible');
    await waitFor(() => small.stats().dropReports >= 1 && small.stats().unreportedDrops === 0, {
      timeoutMs: 120_000,
      what: 'the drop report to be delivered',
    });
    const dropped = small.stats().dropped;
    assert.ok(dropped > 0);
    const smallStored = await waitForStored(
      ch,
      smallId,
      1 + perServer - dropped + small.stats().dropReports,
      180_000,
    );
    assert.equal(smallStored.distinct, 1 + perServer - dropped + small.stats().dropReports);
    assert.equal(
      await droppedReported(smallId),
      dropped,
      'the reported dropped count equals stats().dropped',
    );
    assert.equal(await droppedReported(bigId), 0);
    const { distinct } = await countBySource(ch, smallId);
    console.log(
      `after recovery: big ${bigStored.distinct} events stored, small ${distinct} stored + ${dropped} dropped and reported; ` +
        `failed delivery attempts: big ${big.stats().failedAttempts}, small ${small.stats().failedAttempts}`,
    );
  } finally {
    for (const s of [a, b]) {
      await s.client.close();
      await s.server.close();
    }
    await big.close();
    await small.close();
  }
});
