import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseEvent, MAX_ARGS_BYTES, MAX_ERROR_MESSAGE_LENGTH } from '@mcp-audit/schema';
import { createRedactor } from '@mcp-audit/redaction';
import { createLogger } from '@mcp-audit/service-kit';
import { createAuditEmitter, DROPPED_METHOD, type AuditEventDraft } from '../src/index.js';
import { MemorySink } from './memory-sink.js';
import { captureLogs, until } from './util.js';

const SOURCE = { type: 'sdk' as const, id: 'sdk-test', version: '1.2.3' };
const KEY = 'unit-test-redaction-key-0123456789';

function draft(i = 0, extra: Partial<AuditEventDraft> = {}): AuditEventDraft {
  return {
    kind: 'tool_call',
    client: { id: 'client-a' },
    server: { name: 'files', transport: 'stdio' },
    method: 'tools/call',
    tool: { name: 'read_file' },
    outcome: 'ok',
    duration_ms: 3,
    request_bytes: 20,
    response_bytes: 40,
    args: { path: `/tmp/${i}` },
    ...extra,
  };
}

function emitterWith(sink: MemorySink, o: Partial<Parameters<typeof createAuditEmitter>[0]> = {}) {
  return createAuditEmitter({
    sink,
    source: SOURCE,
    redactionKey: KEY,
    flushIntervalMs: 5,
    retryBackoffMs: { min: 5, max: 20 },
    closeTimeoutMs: 2_000,
    logger: createLogger('sdk-test', { level: 'silent' }),
    ...o,
  });
}

describe('createAuditEmitter', () => {
  it('fills schema_version, a UUIDv7 event_id, ts and source; events pass the contract', async () => {
    const sink = new MemorySink();
    const em = emitterWith(sink);
    const before = Date.now();
    em.emit(draft(1));
    const given = new Date(Date.now() - 60_000).toISOString();
    em.emit(draft(2, { ts: given }));
    await em.flush();
    const [a, b] = sink.events;
    assert.ok(a && b);
    assert.equal(a.schema_version, 1);
    assert.match(a.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(a.event_id < b.event_id, 'v7 ids sort in emit order');
    assert.ok(Date.parse(a.ts) >= before - 1 && Date.parse(a.ts) <= Date.now());
    assert.equal(b.ts, given, 'a given ts is kept');
    assert.deepEqual(a.source, SOURCE);
    assert.deepEqual(a.args, { path: '/tmp/1' });
    for (const e of sink.events) assert.ok(parseEvent(JSON.stringify(e)).ok);
    assert.deepEqual(em.stats(), {
      buffered: 0,
      bufferedBytes: 0,
      sent: 2,
      dropped: 0,
      invalid: 0,
      failedAttempts: 0,
      rejected: 0,
      dropReports: 0,
      unreportedDrops: 0,
    });
    await em.close();
    assert.ok(sink.closed, 'close() closes the sink');
  });

  it('redacts args, error message and labels at the source', async () => {
    const sink = new MemorySink();
    const em = emitterWith(sink);
    const ghToken = `ghp_${'a1B2c3D4e5'.repeat(3)}abcdef`;
    em.emit(
      draft(0, {
        args: { path: '/x', api_key: 'sk-live-very-secret-value', nested: { note: `token ${ghToken}` } },
        outcome: 'error',
        error: { code: 'E', message: 'login failed: Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123' },
        labels: { env: 'prod', password: 'hunter2hunter2' },
      }),
    );
    await em.flush();
    const [e] = sink.events;
    const text = JSON.stringify(e);
    assert.ok(!text.includes('sk-live-very-secret-value'), 'credential key redacted');
    assert.ok(!text.includes(ghToken), 'token pattern redacted');
    assert.ok(!text.includes('abcdefghijklmnopqrstuvwxyz0123'), 'bearer in error message redacted');
    assert.ok(!text.includes('hunter2hunter2'), 'label redacted');
    assert.equal(e!.args!.path, '/x');
    assert.match(String(e!.args!.api_key), /^\[REDACTED:/);
    assert.equal(e!.labels!.env, 'prod');
    // The same key gives the same fingerprint as the services' redactor.
    const again = createRedactor({ fingerprintKey: KEY }).redactValue(e!.args).value;
    assert.deepEqual(again, e!.args, 'redaction at ingest changes nothing more');
    await em.close();
  });

  it('replaces large values by their SHA-256 and keeps args within the contract', async () => {
    const sink = new MemorySink();
    const em = emitterWith(sink, { maxArgValueBytes: 100 });
    const big = 'x'.repeat(5_000);
    const many = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, 'y'.repeat(90) + i]));
    em.emit(draft(0, { args: { content: big, small: 'ok' } }));
    em.emit(draft(1, { args: many }));
    await em.flush();
    const [a, b] = sink.events;
    const digest = createHash('sha256').update(big).digest('hex');
    assert.equal(a!.args!.content, `[DIGEST:sha256:${digest}:5000B]`);
    assert.equal(a!.args!.small, 'ok');
    assert.ok(Buffer.byteLength(JSON.stringify(b!.args)) <= MAX_ARGS_BYTES);
    assert.equal(Object.keys(b!.args!).length, 200, 'members under the per-value cap are kept');
    // Markers survive another redaction pass unchanged (the ingester redacts again).
    assert.deepEqual(createRedactor({ fingerprintKey: KEY }).redactValue(a!.args).value, a!.args);
    await em.close();
  });

  it('counts and logs an invalid draft with the reason, never throws, delivers the rest', async () => {
    const sink = new MemorySink();
    const logs = captureLogs();
    const em = emitterWith(sink, { logger: createLogger('sdk-test', { level: 'warn', destination: logs }) });
    assert.doesNotThrow(() => em.emit(draft(0, { tool: undefined })));
    assert.doesNotThrow(() => em.emit({ nonsense: true } as unknown as AuditEventDraft));
    em.emit(draft(1));
    await em.flush();
    assert.equal(sink.events.length, 1);
    assert.equal(em.stats().invalid, 2);
    const warn = logs.lines.find((l) => l.msg === 'invalid audit event not emitted');
    assert.ok(warn, 'logged');
    assert.match(String(warn.reason), /tool: Required when kind is tool_call/);
    await em.close();
  });

  it('cuts an over-long error message between characters, never inside a surrogate pair', async () => {
    const sink = new MemorySink();
    const em = emitterWith(sink);
    // The cut point (MAX_ERROR_MESSAGE_LENGTH - 1) falls after the high half of an emoji.
    const message = 'a'.repeat(MAX_ERROR_MESSAGE_LENGTH - 2) + '😀'.repeat(10);
    em.emit(draft(0, { outcome: 'error', error: { code: 'tool_error', message } }));
    await em.flush();
    assert.equal(em.stats().invalid, 0);
    const [e] = sink.events;
    assert.ok(e && parseEvent(JSON.stringify(e)).ok);
    assert.equal(e.error?.message, `${'a'.repeat(MAX_ERROR_MESSAGE_LENGTH - 2)}…`);
    await em.close();
  });

  it('exposes the redactor it applies, so text redacted before emit gets the same fingerprint', async () => {
    const sink = new MemorySink();
    const em = emitterWith(sink);
    const ghToken = `ghp_${'a1B2c3D4e5'.repeat(3)}abcdef`;
    const before = em.redactor!.redactString(`tool-${ghToken}`).value;
    assert.ok(!before.includes(ghToken));
    em.emit(draft(0, { tool: { name: `tool-${ghToken}` } }));
    await em.flush();
    assert.equal(sink.events[0]?.tool?.name, before);
    assert.deepEqual(Object.keys(em.redactor!), ['redactString'], 'nothing but redactString');
    await em.close();
  });

  it('never waits on delivery: emit returns while the sink hangs', async () => {
    const sink = new MemorySink();
    let release!: () => void;
    sink.gate = new Promise((r) => (release = r));
    const em = emitterWith(sink, { maxBatch: 10 });
    for (let i = 0; i < 100; i++) em.emit(draft(i));
    await until(() => sink.calls === 1, 'a send in flight');
    assert.equal(em.stats().buffered, 100, 'all buffered while the first batch hangs');
    release();
    sink.gate = undefined;
    await em.flush();
    assert.equal(sink.events.length, 100);
    assert.deepEqual(
      sink.events.map((e) => e.args!.path),
      Array.from({ length: 100 }, (_, i) => `/tmp/${i}`),
      'delivered in emit order',
    );
    assert.ok(
      sink.batches.every((b) => b.length <= 10),
      'batches capped at maxBatch',
    );
    await em.close();
  });

  it('bounded buffer: drops past capacity, retries with backoff, reports the drops once delivery recovers', async () => {
    const sink = new MemorySink();
    sink.down = true;
    const em = emitterWith(sink, { capacity: 10 });
    const t0 = Date.now();
    for (let i = 0; i < 25; i++) em.emit(draft(i));
    assert.equal(em.stats().buffered, 10);
    assert.equal(em.stats().dropped, 15);
    await until(() => em.stats().failedAttempts >= 3, 'retries while the sink is down');
    assert.equal(sink.events.length, 0);
    assert.equal(em.stats().unreportedDrops, 15);

    sink.down = false;
    await until(() => em.stats().dropReports === 1, 'the drop report');
    await em.flush();
    const delivered = sink.events.filter((e) => e.method !== DROPPED_METHOD);
    assert.deepEqual(
      delivered.map((e) => e.args!.path),
      Array.from({ length: 10 }, (_, i) => `/tmp/${i}`),
      'the buffered (oldest) events arrive; newer ones were dropped',
    );
    const reports = sink.events.filter((e) => e.method === DROPPED_METHOD);
    assert.equal(reports.length, 1);
    const r = reports[0]!;
    assert.equal(r.kind, 'session');
    assert.equal(r.outcome, 'error');
    assert.equal(r.error?.code, 'AUDIT_ERR_EVENTS_DROPPED');
    assert.equal(r.labels?.['mcp_audit.dropped_count'], '15');
    assert.equal(r.labels?.['mcp_audit.dropped_reason'], 'buffer_full');
    assert.deepEqual(r.client, { id: 'mcp-audit:sdk-test' });
    const first = Date.parse(r.labels!['mcp_audit.dropped_first_ts']!);
    const last = Date.parse(r.labels!['mcp_audit.dropped_last_ts']!);
    assert.ok(t0 <= first && first <= last && last <= Date.now());
    assert.ok(parseEvent(JSON.stringify(r)).ok, 'the report is a valid event');
    const s = em.stats();
    assert.equal(s.sent, 10);
    assert.equal(s.dropped, 15);
    assert.equal(s.unreportedDrops, 0);
    assert.equal(s.buffered, 0);
    await em.close();
  });

  it('bounds the buffer by bytes too', async () => {
    const sink = new MemorySink();
    sink.down = true;
    const em = emitterWith(sink, { maxBufferBytes: 4_000 });
    for (let i = 0; i < 50; i++) em.emit(draft(i, { args: { blob: 'z'.repeat(500) } }));
    const s = em.stats();
    assert.ok(s.bufferedBytes <= 4_000);
    assert.ok(s.buffered > 0 && s.buffered < 50);
    assert.equal(s.buffered + s.dropped, 50, 'every event is buffered or counted');
    sink.down = false;
    await em.flush();
    await until(() => em.stats().dropReports === 1, 'the drop report');
    const r = sink.events.find((e) => e.method === DROPPED_METHOD)!;
    assert.equal(r.labels?.['mcp_audit.dropped_count'], String(s.dropped));
    assert.equal(r.labels?.['mcp_audit.dropped_reason'], 'buffer_bytes');
    await em.close();
  });

  it('a drop report is sent once even if its first delivery fails (same event_id on retry)', async () => {
    const sink = new MemorySink();
    sink.down = true;
    const em = emitterWith(sink, { capacity: 2, maxBatch: 1 });
    for (let i = 0; i < 5; i++) em.emit(draft(i));
    let reportFailures = 0;
    sink.failIf = (events) => events.some((e) => e.method === DROPPED_METHOD) && reportFailures++ < 2;
    sink.down = false;
    await em.flush();
    await until(() => em.stats().dropReports === 1, 'the drop report');
    assert.equal(reportFailures, 3, 'the report failed twice, then got through');
    const reports = sink.events.filter((e) => e.method === DROPPED_METHOD);
    assert.equal(reports.length, 1);
    assert.equal(reports[0]!.labels?.['mcp_audit.dropped_count'], '3');
    assert.equal(em.stats().dropped, 3);
    await em.close();
  });

  it('countDropped: drops of events never built are reported like buffer drops (now, or once delivery recovers)', async () => {
    const sink = new MemorySink();
    const em = emitterWith(sink);
    em.countDropped('in_flight_limit', 2);
    assert.equal(em.stats().dropped, 2);
    await until(() => em.stats().dropReports === 1, 'a report with nothing else to deliver');
    const [first] = sink.events;
    assert.equal(first?.method, DROPPED_METHOD);
    assert.equal(first?.labels?.['mcp_audit.dropped_count'], '2');
    assert.equal(first?.labels?.['mcp_audit.dropped_reason'], 'in_flight_limit');

    sink.down = true;
    em.emit(draft(1));
    await until(() => sink.failures > 0, 'a failed delivery');
    em.countDropped('in_flight_limit');
    em.countDropped('in_flight_limit', 0);
    assert.equal(em.stats().unreportedDrops, 1);
    sink.down = false;
    await until(() => em.stats().dropReports === 2 && em.stats().buffered === 0, 'the second report');
    assert.equal(sink.events.at(-1)?.labels?.['mcp_audit.dropped_count'], '1');
    assert.equal(em.stats().dropped, 3);
    await em.close();
  });

  it('close() flushes everything buffered, then closes the sink; later emits are counted as dropped', async () => {
    const sink = new MemorySink();
    const em = emitterWith(sink, { flushIntervalMs: 60_000 });
    for (let i = 0; i < 7; i++) em.emit(draft(i));
    assert.equal(sink.events.length, 0, 'a partial batch waits for the interval');
    await em.close();
    assert.equal(sink.events.length, 7);
    assert.ok(sink.closed);
    em.emit(draft(99));
    assert.equal(em.stats().dropped, 1);
  });

  it('close() with the sink down gives up after closeTimeoutMs and counts what it could not deliver', async () => {
    const sink = new MemorySink();
    sink.down = true;
    const logs = captureLogs();
    const em = emitterWith(sink, {
      closeTimeoutMs: 200,
      logger: createLogger('sdk-test', { level: 'warn', destination: logs }),
    });
    for (let i = 0; i < 5; i++) em.emit(draft(i));
    const t = Date.now();
    await em.close();
    assert.ok(Date.now() - t < 5_000, 'close is bounded');
    assert.equal(em.stats().dropped, 5);
    assert.equal(em.stats().buffered, 0);
    assert.ok(logs.lines.some((l) => l.msg === 'audit events still undelivered at close; dropped'));
  });

  it('rejects nonsensical options with a clear error', () => {
    const sink = new MemorySink();
    assert.throws(() => emitterWith(sink, { capacity: 0 }), /capacity must be a positive number/);
    assert.throws(() => emitterWith(sink, { retryBackoffMs: { min: 10, max: 5 } }), /retryBackoffMs/);
  });
});
