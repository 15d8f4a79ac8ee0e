import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEvent } from '@mcp-audit/schema';
import { fromEventRow, toEventRow } from '../src/events.row.js';

const full = {
  schema_version: 1,
  event_id: '0193a6f2-7c4e-7b1a-9c3d-2e4f5a6b7c8d',
  ts: '2026-11-21T10:15:30.042Z',
  kind: 'tool_call',
  source: { type: 'gateway', id: 'gw-eu-1', version: '0.3.1' },
  client: {
    id: 'acme-support-bot',
    name: 'Support bot',
    user: 'alice@acme.test',
    agent: 'claude-desktop',
    ip: '2001:db8::7',
    user_agent: 'mcp-client/1.4',
    session_id: 'sess-42',
  },
  server: { name: 'filesystem', version: '2025.3.1', transport: 'stdio' },
  method: 'tools/call',
  tool: {
    name: 'read_file',
    definition_hash: 'a'.repeat(64),
    annotations: { title: 'Read file', readOnlyHint: true, openWorldHint: false },
  },
  outcome: 'error',
  http_status: 200,
  rpc_error_code: -32603,
  tool_is_error: true,
  trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
  auth: { method: 'oauth', result: 'success' },
  error: { code: 404, message: 'no such file' },
  duration_ms: 17,
  request_bytes: 120,
  response_bytes: 0,
  args: { path: '/etc/hosts', nested: { deep: [1, 'two', null, true] } },
  response_digest: 'b'.repeat(64),
  labels: { env: 'prod', team: 'support' },
};

const minimal = {
  schema_version: 1,
  event_id: '0193a6f2-7c4e-7b1a-9c3d-2e4f5a6b7c8e',
  ts: '2026-11-21T10:15:30.000Z',
  kind: 'session',
  source: { type: 'sdk', id: 'svc-a', version: '1.0.0' },
  client: { id: 'c1' },
  server: { name: 's', transport: 'http' },
  method: 'initialize',
  outcome: 'ok',
  duration_ms: 0,
  request_bytes: 0,
  response_bytes: 0,
};

/** What ClickHouse hands back for a row written from `toEventRow` (JSONEachRow text forms). */
function asStored(row: ReturnType<typeof toEventRow>): Record<string, unknown> {
  const dt = (s: number) => new Date(s * 1000).toISOString().slice(0, 19).replace('T', ' ');
  return {
    ...row,
    ts: dt(row.ts),
    ingested_at: dt(row.ingested_at),
    request_bytes: String(row.request_bytes),
    response_bytes: String(row.response_bytes),
    kafka_offset: String(row.kafka_offset),
  };
}

for (const [name, ev] of [
  ['fully populated gateway event', full],
  ['minimal sdk event', minimal],
] as const) {
  test(`${name}: row mapping round-trips every field`, () => {
    const parsed = parseEvent(JSON.stringify(ev), { now: Date.parse('2026-11-21T10:16:00Z') });
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.reason);
    const row = toEventRow(parsed.event, parsed.raw, {
      partition: 3,
      offset: '12345',
      ingestedAtMs: 1_763_720_000_123,
    });
    assert.equal(row.ts_ms, Date.parse(ev.ts) % 1000);
    assert.equal(row.ver, 4294967295 - 1_763_720_000);
    const back = fromEventRow(asStored(row));
    // error.code comes back as text: the column is a String (the contract allows string or integer).
    const expected = structuredClone(ev) as Record<string, unknown>;
    if (expected.error)
      (expected.error as { code: unknown }).code = String((expected.error as { code: unknown }).code);
    assert.deepEqual(back, expected);
  });
}

test('the first ingested copy wins: an earlier ingest time gives a higher version', () => {
  const p = parseEvent(JSON.stringify(minimal), { now: Date.parse('2026-11-21T10:16:00Z') });
  assert.ok(p.ok);
  const first = toEventRow(p.event, p.raw, { partition: 0, offset: '1', ingestedAtMs: 1_000_000 });
  const later = toEventRow(p.event, p.raw, { partition: 0, offset: '9', ingestedAtMs: 2_000_000 });
  assert.ok(first.ver > later.ver);
});
