import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MAX_ARGS_BYTES,
  MAX_ARGS_DEPTH,
  MAX_CLOCK_SKEW_MS,
  MAX_ERROR_MESSAGE_LENGTH,
  MAX_EVENT_AGE_MS,
  MAX_EVENT_BYTES,
  MAX_LABELS,
  MAX_LABEL_KEY_LENGTH,
  MAX_LABEL_VALUE_LENGTH,
  MAX_STRING_LENGTH,
  MAX_TOOL_TITLE_LENGTH,
  FORBIDDEN_KEYS,
  auditEventV1,
  parseEvent,
  toolDefinitionHash,
  validateEvent,
  type AuditEventV1,
  type JsonValue,
  type ParseResult,
} from '../src/index.js';

const NOW = Date.parse('2026-11-21T10:00:00.000Z');

function accepted(res: ParseResult): { event: AuditEventV1; raw: string } {
  assert.ok(res.ok, res.ok ? '' : `${res.code}: ${res.reason}`);
  return res;
}

function roundTrips(e: AuditEventV1): void {
  const text = JSON.stringify(e);
  const res = accepted(parseEvent(text, { now: NOW }));
  assert.deepStrictEqual(res.event, e);
  assert.equal(res.raw, text);
  assert.deepStrictEqual(accepted(parseEvent(Buffer.from(text), { now: NOW })).event, e);
  assert.deepStrictEqual(accepted(parseEvent(new TextEncoder().encode(text), { now: NOW })).event, e);
  assert.deepStrictEqual(accepted(validateEvent(JSON.parse(text), { now: NOW })).event, e);
}

const readFileTool = {
  name: 'read_file',
  description: 'Read the complete contents of a file from the file system.',
  inputSchema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
};

/** What the gateway emits for a tool call that failed inside the tool (HTTP 200, isError true). */
const gatewayToolCall: AuditEventV1 = {
  schema_version: 1,
  event_id: '0193a5e0-7c1d-7b2a-9f00-3c5d6e7f8a9b',
  ts: '2026-11-21T09:59:58.123Z',
  kind: 'tool_call',
  source: { type: 'gateway', id: 'gw-eu-1', version: '0.4.2' },
  client: {
    id: 'oauth:acme:claude-desktop',
    name: 'ACME Claude Desktop',
    user: 'alice@acme.example',
    agent: 'claude-desktop',
    ip: '2001:db8::7',
    user_agent: 'claude-desktop/0.9.3 (darwin; arm64) mcp-client/2025-06-18',
    session_id: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
  },
  server: { name: 'filesystem', version: '2025.1.0', transport: 'http' },
  method: 'tools/call',
  tool: { name: 'read_file', definition_hash: toolDefinitionHash(readFileTool) },
  outcome: 'error',
  http_status: 200,
  rpc_error_code: -32603,
  tool_is_error: true,
  trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
  auth: { method: 'oauth', result: 'success' },
  error: { code: 'ENOENT', message: 'no such file: /srv/data/[REDACTED]' },
  duration_ms: 37,
  request_bytes: 212,
  response_bytes: 164,
  args: {
    path: '/srv/data/report.txt',
    options: { encoding: 'utf8', range: [0, 4096], follow: true, mode: null, ratio: 0.25 },
    content_sha256: 'c'.repeat(64),
  },
  response_digest: 'd'.repeat(64),
  labels: { env: 'prod', region: 'eu-west-1', 'acme.io/team': 'platform', empty: '' },
};

/** The least a gateway can send: a session start. */
const gatewayMinimal: AuditEventV1 = {
  schema_version: 1,
  event_id: '0193a5e0-0000-7000-8000-000000000001',
  ts: '2026-11-21T09:00:00.000Z',
  kind: 'session',
  source: { type: 'gateway', id: 'gw-eu-1', version: '0.4.2' },
  client: { id: 'c' },
  server: { name: 'github', transport: 'http' },
  method: 'initialize',
  outcome: 'ok',
  duration_ms: 0,
  request_bytes: 0,
  response_bytes: 0,
};

/** A failed authentication seen by the gateway. */
const gatewayAuthFailure: AuditEventV1 = {
  schema_version: 1,
  event_id: '2f1b6c9e-3d4a-4b5c-8d6e-7f8091a2b3c4',
  ts: '2026-11-21T09:59:59.999Z',
  kind: 'auth',
  source: { type: 'gateway', id: 'gw-us-2', version: '0.4.2' },
  client: { id: 'unauthenticated', ip: '198.51.100.23', user_agent: 'curl/8.5.0' },
  server: { name: 'postgres', transport: 'http' },
  method: 'initialize',
  outcome: 'auth_failed',
  http_status: 401,
  auth: { method: 'api_key', result: 'failure', reason: 'unknown key' },
  error: { code: 401, message: 'invalid credentials' },
  duration_ms: 3,
  request_bytes: 88,
  response_bytes: 61,
};

/** An SDK-wrapped stdio server reading a resource. */
const sdkResourceRead: AuditEventV1 = {
  schema_version: 1,
  event_id: '01936f2a-9b8c-7d6e-a5f4-e3d2c1b0a998',
  ts: '2026-11-21T08:15:30.500Z',
  kind: 'resource_read',
  source: { type: 'sdk', id: 'sdk-postgres-worker-3', version: '1.0.0-rc.2' },
  client: { id: 'svc:etl-nightly', name: 'ETL', agent: 'langgraph', session_id: 'stdio-4411' },
  server: { name: 'postgres', version: '0.6.2', transport: 'stdio' },
  method: 'resources/read',
  outcome: 'ok',
  rpc_error_code: 0,
  auth: { method: 'none', result: 'success' },
  duration_ms: 1_250,
  request_bytes: 96,
  response_bytes: 1_048_576,
  args: { uri: 'postgres://db/schema/orders' },
  response_digest: 'e'.repeat(64),
  labels: {},
};

/** The least an SDK can send for a tool call. */
const sdkMinimalToolCall: AuditEventV1 = {
  schema_version: 1,
  event_id: '6ba7b810-9dad-11d1-80b4-00c04fd430c8',
  ts: '2026-10-23T10:00:00.000Z',
  kind: 'tool_call',
  source: { type: 'sdk', id: 'sdk-1', version: '1' },
  client: { id: 'stdio' },
  server: { name: 'everything', transport: 'stdio' },
  method: 'tools/call',
  tool: { name: 'echo' },
  outcome: 'ok',
  duration_ms: 1,
  request_bytes: 2,
  response_bytes: 3,
  args: {},
};

describe('valid events round-trip unchanged', () => {
  const examples: [string, AuditEventV1][] = [
    ['gateway tool call, fully populated', gatewayToolCall],
    ['gateway session, minimal', gatewayMinimal],
    ['gateway authentication failure', gatewayAuthFailure],
    ['sdk resource read, fully populated', sdkResourceRead],
    ['sdk tool call, minimal', sdkMinimalToolCall],
  ];
  for (const [name, e] of examples) it(name, () => roundTrips(e));

  it('are accepted by the zod schema on its own', () => {
    for (const [, e] of examples) assert.ok(auditEventV1.safeParse(e).success);
  });

  it('accepts every kind, outcome and IPv4/IPv6 form', () => {
    for (const kind of ['resource_read', 'prompt_get', 'tool_list', 'session'] as const) {
      roundTrips({ ...gatewayMinimal, kind });
    }
    for (const outcome of ['ok', 'error', 'denied'] as const) roundTrips({ ...gatewayMinimal, outcome });
    for (const ip of [
      '127.0.0.1',
      '::1',
      'fe80::1ff:fe23:4567:890a',
      '::ffff:192.0.2.128',
      '2001:db8:0:0:0:0:2:1',
    ]) {
      roundTrips({ ...gatewayMinimal, client: { id: 'c', ip } });
    }
  });

  it('accepts error codes as strings and integers', () => {
    roundTrips({ ...gatewayMinimal, outcome: 'error', error: { code: -32601, message: 'Method not found' } });
    roundTrips({ ...gatewayMinimal, outcome: 'error', error: { code: 'UPSTREAM_TIMEOUT', message: '' } });
  });

  it('accepts Unicode everywhere it is valid', () => {
    roundTrips({
      ...gatewayToolCall,
      client: { id: 'клиент-名前-😀', name: 'Zoë' },
      args: { 'ключ 🔑': ['\t tabs and\nnewlines are fine in args', '\u{1F600}'] },
      error: { code: 'E', message: 'line 1\nline 2' },
    });
  });
});

describe('limits are inclusive', () => {
  const padTo = (target: number): AuditEventV1 & { x_pad: string } => {
    const e = { ...gatewayMinimal, x_pad: '' };
    e.x_pad = 'p'.repeat(target - Buffer.byteLength(JSON.stringify(e)));
    return e;
  };

  it('an event of exactly MAX_EVENT_BYTES is accepted, one byte more is not', () => {
    assert.equal(Buffer.byteLength(JSON.stringify(padTo(MAX_EVENT_BYTES))), MAX_EVENT_BYTES);
    accepted(parseEvent(JSON.stringify(padTo(MAX_EVENT_BYTES)), { now: NOW }));
    const over = parseEvent(JSON.stringify(padTo(MAX_EVENT_BYTES + 1)), { now: NOW });
    assert.equal(over.ok ? 'ok' : over.code, 'AUDIT_ERR_TOO_LARGE');
  });

  it('args of exactly MAX_ARGS_BYTES are accepted, one byte more is not', () => {
    const overhead = JSON.stringify({ blob: '' }).length;
    const args = { blob: 'x'.repeat(MAX_ARGS_BYTES - overhead) };
    roundTrips({ ...sdkMinimalToolCall, args });
    const res = parseEvent(JSON.stringify({ ...sdkMinimalToolCall, args: { blob: `${args.blob}x` } }), {
      now: NOW,
    });
    assert.equal(res.ok ? 'ok' : res.issues[0]?.path, 'args');
  });

  it(`args nested ${MAX_ARGS_DEPTH} levels deep are accepted`, () => {
    let args: JsonValue = {};
    for (let i = 1; i < MAX_ARGS_DEPTH; i++) args = { a: args };
    roundTrips({ ...sdkMinimalToolCall, args: args as Record<string, JsonValue> });
  });

  it(`${MAX_LABELS} labels of the longest key and value are accepted`, () => {
    const labels = Object.fromEntries(
      Array.from({ length: MAX_LABELS }, (_, i) => [
        `${i}`.padStart(MAX_LABEL_KEY_LENGTH, 'k'),
        'v'.repeat(MAX_LABEL_VALUE_LENGTH),
      ]),
    );
    roundTrips({ ...gatewayMinimal, labels });
  });

  it('identifiers and error messages at their maximum length are accepted', () => {
    roundTrips({
      ...gatewayMinimal,
      client: { id: 'i'.repeat(MAX_STRING_LENGTH), user_agent: 'u'.repeat(MAX_STRING_LENGTH) },
      error: { code: 'c'.repeat(MAX_STRING_LENGTH), message: 'm'.repeat(MAX_ERROR_MESSAGE_LENGTH) },
    });
  });

  it('ts exactly at the skew and age limits is accepted', () => {
    for (const at of [NOW + MAX_CLOCK_SKEW_MS, NOW - MAX_EVENT_AGE_MS]) {
      roundTrips({ ...gatewayMinimal, ts: new Date(at).toISOString() });
    }
  });

  it('the clock defaults to Date.now()', () => {
    accepted(parseEvent(JSON.stringify({ ...gatewayMinimal, ts: new Date().toISOString() })));
    const tomorrow = parseEvent(
      JSON.stringify({ ...gatewayMinimal, ts: new Date(Date.now() + 86_400_000).toISOString() }),
    );
    assert.equal(tomorrow.ok ? 'ok' : tomorrow.issues[0]?.path, 'ts');
  });
});

describe('unknown fields', () => {
  const withExtras = {
    ...gatewayToolCall,
    x_gateway_region: 'eu-west-1',
    future_field: { nested: [1, 2, { deep: true }] },
    client: { ...gatewayToolCall.client, device_id: 'dev-1' },
    tool: { ...gatewayToolCall.tool, title: 'Read file' },
    auth: { ...gatewayToolCall.auth, scopes: ['files:read'] },
  };

  it('are accepted, stripped from event at every level, and kept in raw', () => {
    const text = JSON.stringify(withExtras);
    const res = accepted(parseEvent(text, { now: NOW }));
    assert.deepStrictEqual(res.event, gatewayToolCall);
    assert.equal(res.raw, text);
    const raw = JSON.parse(res.raw) as Record<string, unknown>;
    assert.equal(raw.x_gateway_region, 'eu-west-1');
    assert.deepStrictEqual((raw.client as Record<string, unknown>).device_id, 'dev-1');
  });

  it('are stripped by validateEvent too, and kept in its raw', () => {
    const res = accepted(validateEvent(withExtras, { now: NOW }));
    assert.deepStrictEqual(res.event, gatewayToolCall);
    assert.deepStrictEqual(JSON.parse(res.raw), withExtras);
  });

  it('still obey the rules that hold everywhere', () => {
    const res = parseEvent(JSON.stringify({ ...gatewayMinimal, extra: { prototype: 1 } }), { now: NOW });
    assert.equal(res.ok ? 'ok' : res.reason, 'extra.prototype: forbidden key (prototype pollution)');
  });
});

describe('property: any event built from valid fields round-trips', () => {
  // eslint-disable-next-line no-control-regex -- control characters are what identifiers refuse
  const control = /[\u0000-\u001f\u007f]/;
  const text = (max: number) => fc.string({ unit: 'grapheme', maxLength: max });
  const identifier = text(40).filter(
    (s) => s.length > 0 && s.length <= MAX_STRING_LENGTH && !control.test(s),
  );
  const freeText = fc.string({ unit: 'grapheme', maxLength: 60 }).filter((s) => !s.includes('\u0000'));
  const key = freeText.filter((k) => !FORBIDDEN_KEYS.includes(k));
  const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
  // -0 is not JSON (it serializes as 0), so it is mapped away rather than expected to survive.
  const number = fc.oneof(
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => (Object.is(d, -0) ? 0 : d)),
  );
  const json: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
    value: fc.oneof(
      { maxDepth: 4 },
      freeText,
      number,
      fc.boolean(),
      fc.constant(null),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(key, tie('value'), { maxKeys: 4, noNullPrototype: true }),
    ),
  })).value;
  const count = fc.nat({ max: Number.MAX_SAFE_INTEGER });

  const event = fc
    .record(
      {
        schema_version: fc.constant(1 as const),
        event_id: fc.uuid({ version: [1, 2, 3, 4, 5, 6, 7, 8] }),
        ts: fc
          .integer({ min: NOW - MAX_EVENT_AGE_MS, max: NOW + MAX_CLOCK_SKEW_MS })
          .map((ms) => new Date(ms).toISOString()),
        kind: fc.constantFrom('tool_call', 'resource_read', 'prompt_get', 'tool_list', 'session', 'auth'),
        source: fc.record(
          { type: fc.constantFrom('gateway', 'sdk'), id: identifier, version: identifier },
          { noNullPrototype: true },
        ),
        client: fc.record(
          {
            id: identifier,
            name: identifier,
            user: identifier,
            agent: identifier,
            ip: fc.oneof(fc.ipV4(), fc.ipV6()),
            user_agent: identifier,
            session_id: identifier,
          },
          { requiredKeys: ['id'], noNullPrototype: true },
        ),
        server: fc.record(
          { name: identifier, version: identifier, transport: fc.constantFrom('stdio', 'http') },
          {
            requiredKeys: ['name', 'transport'],
            noNullPrototype: true,
          },
        ),
        method: identifier,
        tool: fc.record(
          {
            name: identifier,
            definition_hash: hex(64),
            annotations: fc.record(
              {
                title: text(40).filter((s) => s.length <= MAX_TOOL_TITLE_LENGTH && !control.test(s)),
                readOnlyHint: fc.boolean(),
                destructiveHint: fc.boolean(),
                idempotentHint: fc.boolean(),
                openWorldHint: fc.boolean(),
              },
              { requiredKeys: [], noNullPrototype: true },
            ),
          },
          { requiredKeys: ['name'], noNullPrototype: true },
        ),
        outcome: fc.constantFrom('ok', 'error', 'denied', 'auth_failed'),
        http_status: fc.integer({ min: 100, max: 599 }),
        rpc_error_code: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        tool_is_error: fc.boolean(),
        trace_id: hex(32).filter((t) => !/^0+$/.test(t)),
        auth: fc.record(
          {
            method: fc.constantFrom('oauth', 'api_key', 'mtls', 'none'),
            result: fc.constantFrom('success', 'failure'),
            reason: identifier,
          },
          { requiredKeys: ['method', 'result'], noNullPrototype: true },
        ),
        error: fc.record(
          { code: fc.oneof(identifier, fc.integer()), message: freeText },
          { noNullPrototype: true },
        ),
        duration_ms: fc.nat({ max: 4_294_967_295 }),
        request_bytes: count,
        response_bytes: count,
        args: fc.dictionary(key, json, { maxKeys: 6, noNullPrototype: true }),
        response_digest: hex(64),
        labels: fc.dictionary(
          identifier.filter((k) => k.length <= MAX_LABEL_KEY_LENGTH && !FORBIDDEN_KEYS.includes(k)),
          text(20).filter((v) => !control.test(v)),
          { maxKeys: 8, noNullPrototype: true },
        ),
      },
      {
        requiredKeys: [
          'schema_version',
          'event_id',
          'ts',
          'kind',
          'source',
          'client',
          'server',
          'method',
          'outcome',
          'duration_ms',
          'request_bytes',
          'response_bytes',
        ],
        noNullPrototype: true,
      },
    )
    // The cross-field rules, applied rather than filtered so no run is wasted.
    .map((e) => {
      const out = { ...e } as AuditEventV1;
      if (out.kind === 'tool_call' && out.tool === undefined) out.tool = { name: 'tool' };
      if (out.kind === 'tool_list' && out.method === 'tools/list' && out.tool && !out.tool.definition_hash) {
        out.tool = { ...out.tool, definition_hash: 'e'.repeat(64) };
      }
      if (out.kind !== 'tool_call' && out.kind !== 'tool_list' && out.tool?.annotations) {
        const { annotations: _dropped, ...tool } = out.tool;
        out.tool = tool;
      }
      if ((out.kind === 'auth' || out.outcome === 'auth_failed') && out.auth === undefined) {
        out.auth = { method: 'api_key', result: 'failure' };
      }
      if (out.outcome === 'auth_failed' && out.auth) out.auth = { ...out.auth, result: 'failure' };
      return out;
    });

  it('through parseEvent and validateEvent', () => {
    fc.assert(
      fc.property(event, (e) => {
        const text = JSON.stringify(e);
        const res = parseEvent(text, { now: NOW });
        if (!res.ok) throw new Error(`${res.code}: ${res.reason}`);
        assert.deepStrictEqual(res.event, e);
        assert.equal(res.raw, text);
        const again = validateEvent(JSON.parse(text), { now: NOW });
        assert.ok(again.ok);
        assert.deepStrictEqual(again.event, e);
      }),
      { numRuns: 300 },
    );
  });
});
