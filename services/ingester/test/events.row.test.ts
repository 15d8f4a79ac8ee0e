import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEvent, parseStoredRaw, REMAINDER_KEY, remainderOf, remainderOfRow } from '@mcp-audit/schema';
import { createEventRedactor } from '@mcp-audit/redaction';
import { fromEventRow, reconstructEvent, toEventRow, type EventRow } from '../src/events.row.js';

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

// ---- The remainder (migration 013): `raw` holds only what the typed columns do not ------------

const redactor = createEventRedactor();
const NOW = Date.parse('2026-11-21T10:16:00Z');

/** event → parse → redact → row → stored text forms → reconstructEvent, and the redacted input. */
function roundTrip(ev: object): { row: EventRow; back: Record<string, unknown>; expected: unknown } {
  const parsed = parseEvent(JSON.stringify(ev), { now: NOW });
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.reason);
  const { event, raw } = redactor.redactEvent(parsed.event, parsed.raw);
  const row = toEventRow(event, raw, { partition: 1, offset: '7', ingestedAtMs: NOW });
  return { row, back: reconstructEvent(asStored(row)), expected: JSON.parse(raw) };
}

const variants: Array<[string, object]> = [
  ['fully populated (numeric error code, annotations)', full],
  ['minimal', minimal],
  ...(['tool_call', 'resource_read', 'prompt_get', 'tool_list', 'session', 'auth'] as const).map(
    (kind): [string, object] => [
      `kind ${kind}`,
      {
        ...minimal,
        kind,
        ...(kind === 'tool_call' || kind === 'tool_list'
          ? { method: 'tools/list', tool: { name: 't', definition_hash: 'c'.repeat(64) } }
          : {}),
        ...(kind === 'auth'
          ? { auth: { method: 'api_key', result: 'failure', reason: 'expired' }, outcome: 'auth_failed' }
          : {}),
      },
    ],
  ),
  [
    'unknown fields at every level, nulls among them',
    {
      ...full,
      vendor: { region: 'eu', ids: [1, 2, null] },
      nothing: null,
      client: { ...full.client, tenant: 'acme', extra: null },
      server: { ...full.server, build: 7 },
      tool: { ...full.tool, annotations: { ...full.tool.annotations, futureHint: true } },
      error: { code: 'E_X', message: 'boom', data: { retry: false } },
    },
  ],
  [
    'annotations only (no unknown field)',
    {
      ...minimal,
      kind: 'tool_call',
      method: 'tools/call',
      tool: { name: 'x', annotations: { destructiveHint: true } },
    },
  ],
  ['empty args and labels', { ...minimal, args: {}, labels: {} }],
  [
    'colons, quotes and backslashes in strings (member counting), known fields only',
    {
      ...full,
      args: { 'a:b': 'c:"d\\', url: 'http://x:1/"', list: [{ 'k:': ':' }] },
      labels: { 'l:1': '\\"' },
    },
  ],
  ['the same with an unknown member', { ...full, args: { 'a:b': 'c:"d\\' }, 'x:"y': { '\\': ':' } }],
  [
    'a secret in args and an unknown field (redacted in both)',
    { ...full, args: { password: 'hunter2-very-secret' }, token: 'Bearer abc.def.ghi' },
  ],
  [
    'zero and negative numbers, unicode',
    {
      ...full,
      rpc_error_code: 0,
      http_status: 599,
      duration_ms: 0,
      args: { s: 'snow ☃ / \u2028', n: -1.5e-7 },
    },
  ],
];

for (const [name, ev] of variants) {
  test(`round trip, ${name}: reconstructEvent(row) equals the redacted input`, () => {
    const { row, back, expected } = roundTrip(ev);
    assert.deepEqual(back, expected);
    assert.equal(row.raw.includes('"event_id"'), false, 'raw never holds a typed field it does not need');
    // toEventRow skips parsing when nothing is unknown: the full comparison gives the same text
    assert.equal(row.raw, remainderOf(expected as Record<string, unknown>, fromEventRow(asStored(row))));
  });
}

test('raw is empty for an event with known fields only; it carries unknown fields and annotations', () => {
  assert.equal(roundTrip(minimal).row.raw, '');
  assert.equal(roundTrip({ ...full, tool: { name: 'read_file' }, error: undefined }).row.raw, '');
  const r = JSON.parse(roundTrip({ ...full, vendor: 'x' }).row.raw) as Record<string, unknown>;
  assert.deepEqual(r, {
    [REMAINDER_KEY]: {
      vendor: 'x',
      // the contract allows an integer code; the column is a String
      error: { code: 404 },
      tool: { annotations: full.tool.annotations },
    },
  });
});

test('an older row (raw = the whole redacted event) reads the same as a new one', () => {
  const ev = { ...full, vendor: { a: 1 } };
  const { row, expected } = roundTrip(ev);
  const old = { ...asStored(row), raw: JSON.stringify(expected) };
  assert.deepEqual(reconstructEvent(old), expected);
  assert.deepEqual(parseStoredRaw(old.raw).kind, 'full');
  // and normalises to exactly the remainder the ingester writes today (event-ids guard, import)
  assert.equal(remainderOfRow(old), row.raw);
  assert.equal(remainderOfRow(asStored(row)), row.raw);
});

test('typed columns win where the received event lacks a value (a label the history import adds)', () => {
  const { row } = roundTrip({ ...full, vendor: 1 });
  row.label_keys.push('origin');
  row.label_values.push('import');
  const back = reconstructEvent(asStored(row));
  assert.equal((back.labels as Record<string, string>).origin, 'import');
  assert.equal(back.vendor, 1);
});

test('a raw that is not a JSON object adds nothing: the typed columns still give the event', () => {
  const { row } = roundTrip(minimal);
  for (const raw of ['not json', '[1]', '"s"', '{"remainder":5}'])
    assert.deepEqual(reconstructEvent({ ...asStored(row), raw }), fromEventRow(asStored(row)));
});

test('round trip over 2,000 generated events: unknown members anywhere, odd strings, every optional part', () => {
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const strs = ['a', 'x:y', 'q"uote', 'back\\slash', '{"k":1}', 'snow ☃', ':', '\\"', 'end\\\\'];
  const value = (depth: number): unknown => {
    const k = rnd();
    if (depth > 2 || k < 0.3) return pick(strs);
    if (k < 0.45) return Math.floor(rnd() * 1000) - 500;
    if (k < 0.55) return pick([true, false, null, 0, -0.5, 1e21]);
    if (k < 0.75) return Array.from({ length: Math.floor(rnd() * 3) }, () => value(depth + 1));
    return Object.fromEntries(
      Array.from({ length: Math.floor(rnd() * 3) }, () => [pick(strs), value(depth + 1)]),
    );
  };
  const maybe = (o: Record<string, unknown>): Record<string, unknown> =>
    rnd() < 0.3 ? { ...o, [`x_${pick(strs)}`]: value(0) } : o;
  let withRemainder = 0;
  for (let i = 0; i < 2000; i++) {
    const tool = rnd() < 0.5;
    const ev: Record<string, unknown> = maybe({
      ...minimal,
      event_id: `0193a6f2-7c4e-7b1a-9c3d-${String(i).padStart(12, '0')}`,
      kind: tool ? pick(['tool_call', 'tool_list']) : pick(['session', 'resource_read', 'prompt_get']),
      method: tool ? 'tools/call' : 'initialize',
      client: maybe(rnd() < 0.5 ? { id: pick(strs) } : { ...full.client, id: pick(strs) }),
      server: maybe({ ...minimal.server, ...(rnd() < 0.5 ? { version: pick(strs) } : {}) }),
    });
    if (tool)
      ev.tool = maybe({
        name: pick(strs),
        ...(rnd() < 0.5 ? { definition_hash: 'c'.repeat(64) } : {}),
        ...(rnd() < 0.4 ? { annotations: maybe({ readOnlyHint: rnd() < 0.5, title: pick(strs) }) } : {}),
      });
    if (rnd() < 0.3) ev.error = maybe({ code: rnd() < 0.5 ? -32000 : pick(strs), message: pick(strs) });
    if (rnd() < 0.5) ev.args = value(0) instanceof Object ? { v: value(0), [pick(strs)]: value(1) } : {};
    if (rnd() < 0.3) ev.labels = rnd() < 0.3 ? {} : { [pick(strs)]: pick(strs) };
    if (rnd() < 0.3) ev.http_status = 200;
    const { row, back, expected } = roundTrip(ev);
    assert.deepEqual(back, expected, `event ${i}: ${JSON.stringify(ev)}`);
    assert.equal(
      row.raw,
      remainderOf(expected as Record<string, unknown>, fromEventRow(asStored(row))),
      `event ${i}`,
    );
    if (row.raw !== '') withRemainder++;
  }
  assert.ok(withRemainder > 500 && withRemainder < 1900, `${withRemainder} of 2000 with a remainder`);
});
