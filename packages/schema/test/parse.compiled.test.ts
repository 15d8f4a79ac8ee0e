import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { auditEventV1 } from '../src/index.js';
import { compiledEvent } from '../src/parse.compiled.js';
import { DELETE, gatewayToolCall, setPath, type Obj } from './fixtures.js';

/** Valid events of every shape the compiled check handles itself (IPv4, annotations, errors, …). */
function bases(): Obj[] {
  const call: Obj = {
    ...gatewayToolCall({ ip: '10.0.3.17' }),
    outcome: 'error',
    rpc_error_code: -32603,
    tool_is_error: true,
    auth: { method: 'api_key', result: 'success', reason: 'token ok' },
    error: { code: 'TOOL_ERROR', message: 'could not read /srv/data/file-1.txt' },
    x_unknown: { kept: 'in raw only' },
  };
  const listing: Obj = {
    schema_version: 1,
    event_id: '0193a5e0-7c1d-7b2a-8f00-3c5d6e7f8a9c',
    ts: '2024-02-29T23:59:59.999Z',
    kind: 'tool_list',
    source: { type: 'sdk', id: 'sdk-1', version: '1' },
    client: { id: 'c' },
    server: { name: 's', transport: 'http' },
    method: 'tools/list',
    tool: {
      name: 'delete_file',
      definition_hash: 'c'.repeat(64),
      annotations: { title: 'Delete', destructiveHint: true, readOnlyHint: false, futureHint: 1 },
    },
    outcome: 'ok',
    duration_ms: 0,
    request_bytes: 0,
    response_bytes: 0,
  };
  const failedAuth: Obj = {
    schema_version: 1,
    event_id: '0193a5e0-7c1d-7b2a-af00-3c5d6e7f8a9d',
    ts: '2026-01-01T00:00:00.000Z',
    kind: 'auth',
    source: { type: 'gateway', id: 'gw', version: '2' },
    client: { id: 'c', ip: '255.255.255.255' },
    server: { name: 's', transport: 'http' },
    method: 'initialize',
    outcome: 'auth_failed',
    auth: { method: 'oauth', result: 'failure' },
    error: { code: 401, message: '' },
    duration_ms: 4_294_967_295,
    request_bytes: Number.MAX_SAFE_INTEGER,
    response_bytes: 1,
    labels: {},
  };
  return [call, listing, failedAuth];
}

const PATHS = [
  'event_id',
  'ts',
  'kind',
  'source',
  'source.type',
  'source.id',
  'source.version',
  'client',
  'client.id',
  'client.name',
  'client.user',
  'client.agent',
  'client.ip',
  'client.user_agent',
  'client.session_id',
  'server',
  'server.name',
  'server.version',
  'server.transport',
  'method',
  'tool',
  'tool.name',
  'tool.definition_hash',
  'tool.annotations',
  'tool.annotations.title',
  'tool.annotations.openWorldHint',
  'outcome',
  'http_status',
  'rpc_error_code',
  'tool_is_error',
  'trace_id',
  'auth',
  'auth.method',
  'auth.result',
  'auth.reason',
  'error',
  'error.code',
  'error.message',
  'duration_ms',
  'request_bytes',
  'response_bytes',
  'args',
  'args.path',
  'response_digest',
  'labels',
  'labels.env',
  'labels.k',
];

const SPECIAL: unknown[] = [
  DELETE,
  '',
  'x',
  'x'.repeat(1024),
  'x'.repeat(1025),
  'x'.repeat(129),
  'x'.repeat(257),
  'x'.repeat(8193),
  'line\nbreak',
  'del\u007f',
  'ok',
  'auth_failed',
  'tool_call',
  'tool_list',
  'auth',
  'failure',
  'success',
  'oauth',
  'http',
  'sdk',
  '2001:db8::7',
  '10.0.0.256',
  '01.2.3.4',
  '1.2.3.4',
  '2026-02-29T00:00:00.000Z',
  '2026-11-21T24:00:00.000Z',
  '2026-11-21T09:59:58Z',
  '2026-11-21T09:59:58.123+00:00',
  '00000000000000000000000000000000',
  '4BF92F3577B34DA6A3CE929D0E0E4736',
  'd'.repeat(64),
  '0193a5e0-7c1d-9b2a-9f00-3c5d6e7f8a9b',
  '0193a5e0-7c1d-7b2a-cf00-3c5d6e7f8a9b',
  -1,
  -0,
  0,
  1.5,
  99,
  100,
  599,
  600,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  -(2 ** 31) - 1,
  4_294_967_296,
  Number.MAX_SAFE_INTEGER + 1,
  null,
  true,
  false,
  [],
  [1],
  {},
  { method: 'api_key', result: 'failure' },
  { code: 'E', message: 'm' },
  { name: 't' },
  { name: 't', definition_hash: 'e'.repeat(64) },
  { title: 'T' },
  { title: 1 },
  { readOnlyHint: 'yes' },
  Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v'])),
  Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])),
  { '': 'empty key' },
  { blob: 'x'.repeat(64 * 1024) },
];

/** The value as JSON.parse gives it to parseEvent (what the compiled check is for). */
const fromJson = (e: Obj): Obj => JSON.parse(JSON.stringify(e)) as Obj;

/** Accepts only what zod accepts, with zod's output, members in zod's order. */
function agrees(value: Obj): boolean {
  const compiled = compiledEvent(value);
  const zod = auditEventV1.safeParse(value);
  if (compiled === undefined) return zod.success;
  assert.ok(zod.success, `compiled check accepted what zod refuses: ${JSON.stringify(value)}`);
  assert.deepStrictEqual(compiled, zod.data);
  assert.equal(JSON.stringify(compiled), JSON.stringify(zod.data));
  return true;
}

describe('the compiled check of parseEvent', () => {
  it('accepts every base event itself, with exactly zod’s output', () => {
    for (const e of bases()) {
      const value = fromJson(e);
      assert.notEqual(compiledEvent(value), undefined, JSON.stringify(e));
      agrees(value);
    }
  });

  it('never accepts what zod refuses, on each special value in each field of each base', () => {
    let accepted = 0;
    let zodAccepted = 0;
    for (const base of bases()) {
      for (const path of PATHS) {
        for (const v of SPECIAL) {
          const e = structuredClone(base);
          setPath(e, path, v);
          const value = fromJson(e);
          if (agrees(value)) zodAccepted++;
          if (compiledEvent(value) !== undefined) accepted++;
        }
      }
    }
    // It handles the valid variants itself, all but IPv6 addresses (left to zod on purpose).
    assert.ok(accepted > 0.9 * zodAccepted, `${accepted} of ${zodAccepted}`);
  });

  it('agrees with zod on random edits of several fields', () => {
    const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(...SPECIAL));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 }),
        fc.array(fc.tuple(fc.constantFrom(...PATHS), value), { maxLength: 3 }),
        (b, edits) => {
          const e = bases()[b]!;
          for (const [path, v] of edits) setPath(e, path, v);
          agrees(fromJson(e));
        },
      ),
      { numRuns: 3000 },
    );
  });
});
