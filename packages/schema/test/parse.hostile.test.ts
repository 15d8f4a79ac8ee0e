import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_ARGS_BYTES,
  MAX_ARGS_DEPTH,
  MAX_CLOCK_SKEW_MS,
  MAX_ERROR_MESSAGE_LENGTH,
  MAX_EVENT_AGE_MS,
  MAX_EVENT_BYTES,
  MAX_LABELS,
  MAX_LABEL_KEY_LENGTH,
  MAX_STRING_LENGTH,
  parseEvent,
  validateEvent,
  type ParseErrorCode,
  type ParseResult,
} from '../src/index.js';
import { NOW, gatewayToolCall, type Obj } from './fixtures.js';

/** A fully populated, valid gateway event; each case breaks one thing in a fresh copy. */
const base = (): Obj => gatewayToolCall();

const json = (f: (e: Obj) => void): string => {
  const e = base();
  f(e);
  return JSON.stringify(e);
};
const obj = (e: Obj, key: string): Obj => e[key] as Obj;

function nest(levels: number, leaf: unknown = 1): unknown {
  let v = leaf;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
}
const aPath = (n: number) => Array.from({ length: n }, () => 'a').join('.');

interface Case {
  name: string;
  input: string | Uint8Array;
  code: ParseErrorCode;
  path: string;
}

const cases: Case[] = [
  // Missing and mistyped fields.
  {
    name: 'missing client.id',
    input: json((e) => delete obj(e, 'client').id),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'client.id',
  },
  {
    name: 'numeric client.id',
    input: json((e) => (obj(e, 'client').id = 42)),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'client.id',
  },
  {
    name: 'empty client.id',
    input: json((e) => (obj(e, 'client').id = '')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'client.id',
  },
  {
    name: 'client.id over the identifier limit',
    input: json((e) => (obj(e, 'client').id = 'x'.repeat(MAX_STRING_LENGTH + 1))),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'client.id',
  },
  {
    name: 'newline in client.id',
    input: json((e) => (obj(e, 'client').id = 'a\nb')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'client.id',
  },
  {
    name: 'missing source',
    input: json((e) => delete e.source),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'source',
  },
  {
    name: 'missing method',
    input: json((e) => delete e.method),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'method',
  },
  {
    name: 'missing source.version',
    input: json((e) => delete obj(e, 'source').version),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'source.version',
  },
  // Identifiers and digests.
  {
    name: 'event_id not a UUID',
    input: json((e) => (e.event_id = 'not-a-uuid')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'event_id',
  },
  {
    name: 'event_id uppercase',
    input: json((e) => (e.event_id = '0193A5E0-7C1D-7B2A-9F00-3C5D6E7F8A9B')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'event_id',
  },
  {
    name: 'event_id nil UUID',
    input: json((e) => (e.event_id = '00000000-0000-0000-0000-000000000000')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'event_id',
  },
  {
    name: 'event_id without hyphens',
    input: json((e) => (e.event_id = '0193a5e07c1d7b2a9f003c5d6e7f8a9b')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'event_id',
  },
  {
    name: 'event_id missing',
    input: json((e) => delete e.event_id),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'event_id',
  },
  {
    name: 'trace_id all zeros',
    input: json((e) => (e.trace_id = '0'.repeat(32))),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'trace_id',
  },
  {
    name: 'trace_id uppercase',
    input: json((e) => (e.trace_id = '4BF92F3577B34DA6A3CE929D0E0E4736')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'trace_id',
  },
  {
    name: 'trace_id 31 characters',
    input: json((e) => (e.trace_id = 'a'.repeat(31))),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'trace_id',
  },
  {
    name: 'client.ip octet out of range',
    input: json((e) => (obj(e, 'client').ip = '10.0.0.256')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'client.ip',
  },
  {
    name: 'client.ip hostname',
    input: json((e) => (obj(e, 'client').ip = 'localhost')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'client.ip',
  },
  {
    name: 'client.ip bad IPv6',
    input: json((e) => (obj(e, 'client').ip = '2001:db8::g1')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'client.ip',
  },
  {
    name: 'response_digest 63 characters',
    input: json((e) => (e.response_digest = 'b'.repeat(63))),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'response_digest',
  },
  {
    name: 'response_digest uppercase',
    input: json((e) => (e.response_digest = 'B'.repeat(64))),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'response_digest',
  },
  {
    name: 'tool.definition_hash not hex',
    input: json((e) => (obj(e, 'tool').definition_hash = 'z'.repeat(64))),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'tool.definition_hash',
  },
  // Numbers.
  {
    name: 'negative duration',
    input: json((e) => (e.duration_ms = -1)),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'duration_ms',
  },
  {
    name: 'fractional request_bytes',
    input: json((e) => (e.request_bytes = 1.5)),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'request_bytes',
  },
  {
    name: 'response_bytes as a string',
    input: json((e) => (e.response_bytes = '2048')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'response_bytes',
  },
  {
    name: 'duration above the UInt32 column (2^32 ms)',
    input: json((e) => (e.duration_ms = 2 ** 32)),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'duration_ms',
  },
  {
    name: 'duration beyond safe integers',
    input: json((e) => (e.duration_ms = 2 ** 53)),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'duration_ms',
  },
  {
    name: 'duration 1e400 (Infinity after JSON.parse)',
    input: json(() => undefined).replace('"duration_ms":42', '"duration_ms":1e400'),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'duration_ms',
  },
  {
    name: 'http_status 600',
    input: json((e) => (e.http_status = 600)),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'http_status',
  },
  {
    name: 'http_status 99',
    input: json((e) => (e.http_status = 99)),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'http_status',
  },
  {
    name: 'rpc_error_code beyond int32',
    input: json((e) => (e.rpc_error_code = 2 ** 31)),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'rpc_error_code',
  },
  {
    name: 'tool_is_error as a string',
    input: json((e) => (e.tool_is_error = 'true')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'tool_is_error',
  },
  // Enums.
  {
    name: 'unknown kind',
    input: json((e) => (e.kind = 'tool_invoke')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'kind',
  },
  {
    name: 'unknown outcome',
    input: json((e) => (e.outcome = 'success')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'outcome',
  },
  {
    name: 'unknown source.type',
    input: json((e) => (obj(e, 'source').type = 'proxy')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'source.type',
  },
  {
    name: 'unknown server.transport',
    input: json((e) => (obj(e, 'server').transport = 'sse')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'server.transport',
  },
  {
    name: 'unknown auth.method',
    input: json((e) => (obj(e, 'auth').method = 'basic')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'auth.method',
  },
  {
    name: 'enum in the wrong case',
    input: json((e) => (e.outcome = 'OK')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'outcome',
  },
  // Rules across fields.
  {
    name: 'tool_call without tool',
    input: json((e) => delete e.tool),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'tool',
  },
  {
    name: 'auth event without auth',
    input: json((e) => {
      e.kind = 'auth';
      delete e.auth;
    }),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'auth',
  },
  {
    name: 'auth_failed with auth.result success',
    input: json((e) => (e.outcome = 'auth_failed')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'auth.result',
  },
  // Error object.
  {
    name: 'error.code boolean',
    input: json((e) => (e.error = { code: true, message: 'x' })),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'error.code',
  },
  {
    name: 'error.code empty string',
    input: json((e) => (e.error = { code: '', message: 'x' })),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'error.code',
  },
  {
    name: 'error without message',
    input: json((e) => (e.error = { code: 'E' })),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'error.message',
  },
  {
    name: 'error.message over the limit',
    input: json((e) => (e.error = { code: 'E', message: 'm'.repeat(MAX_ERROR_MESSAGE_LENGTH + 1) })),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'error.message',
  },
  // args.
  {
    name: 'args is an array',
    input: json((e) => (e.args = [1, 2])),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'args',
  },
  {
    name: 'args is a string',
    input: json((e) => (e.args = 'path=/etc/passwd')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'args',
  },
  {
    name: 'oversized args',
    input: json((e) => (e.args = { blob: 'x'.repeat(MAX_ARGS_BYTES) })),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'args',
  },
  {
    name: 'args nested one level too deep',
    input: json((e) => (e.args = nest(MAX_ARGS_DEPTH, {}) as Obj)),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: `args.${aPath(MAX_ARGS_DEPTH)}`,
  },
  {
    name: 'args nested 100 000 arrays deep',
    input: json(() => undefined).replace(
      '"args":{',
      `"args":{"deep":${'['.repeat(100_000)}${']'.repeat(100_000)},`,
    ),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: `args.deep${'[0]'.repeat(MAX_ARGS_DEPTH - 1)}`,
  },
  // NUL bytes and broken Unicode.
  {
    name: 'NUL in client.name',
    input: json((e) => (obj(e, 'client').name = 'ev\u0000il')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'client.name',
  },
  {
    name: 'NUL in a nested args value',
    input: json((e) => (obj(obj(e, 'args'), 'options').encoding = 'utf8\u0000')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'args.options.encoding',
  },
  {
    name: 'NUL in an args key',
    input: json((e) => (obj(e, 'args')['a\u0000b'] = 1)),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'args["a\\u0000b"]',
  },
  {
    name: 'NUL in error.message',
    input: json((e) => (e.error = { code: 'E', message: 'x\u0000' })),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'error.message',
  },
  {
    name: 'NUL in an unknown field',
    input: json((e) => (e.x_note = '\u0000')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'x_note',
  },
  {
    name: 'lone surrogate in client.user',
    input: json((e) => (obj(e, 'client').user = 'a\ud800b')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'client.user',
  },
  // Prototype pollution and duplicate keys.
  {
    name: '__proto__ at top level',
    input: json(() => undefined).replace('{', '{"__proto__":{"admin":true},'),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: '__proto__',
  },
  {
    name: 'constructor at top level',
    input: json(() => undefined).replace('{', '{"constructor":{"prototype":{}},'),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'constructor',
  },
  {
    name: '__proto__ nested in args',
    input: json(() => undefined).replace('"options":{', '"options":{"__proto__":{"polluted":1},'),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'args.options.__proto__',
  },
  {
    name: 'prototype in an args array item',
    input: json((e) => (obj(e, 'args').list = [{ prototype: 1 }])),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'args.list[0].prototype',
  },
  {
    name: 'constructor in labels',
    input: json(() => undefined).replace('"labels":{', '"labels":{"constructor":"x",'),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'labels.constructor',
  },
  {
    name: '__proto__ in client',
    input: json(() => undefined).replace('"client":{', '"client":{"__proto__":null,'),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'client.__proto__',
  },
  {
    name: 'duplicate client.id',
    input: json(() => undefined).replace('"client":{', '"client":{"id":"someone-else",'),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'client.id',
  },
  {
    name: 'duplicate key spelled with an escape',
    input: json(() => undefined).replace('"labels":{', '"labels":{"\\u0065nv":"dev",'),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'labels.env',
  },
  // Timestamps.
  {
    name: 'ts far in the future',
    input: json((e) => (e.ts = '2027-01-01T00:00:00.000Z')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'ts',
  },
  {
    name: 'ts just past the skew limit',
    input: json((e) => (e.ts = new Date(NOW + MAX_CLOCK_SKEW_MS + 1).toISOString())),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'ts',
  },
  {
    name: 'ts too old',
    input: json((e) => (e.ts = new Date(NOW - MAX_EVENT_AGE_MS - 1).toISOString())),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'ts',
  },
  {
    name: 'ts in 1970',
    input: json((e) => (e.ts = '1970-01-01T00:00:00.000Z')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'ts',
  },
  {
    name: 'ts without milliseconds',
    input: json((e) => (e.ts = '2026-11-21T09:59:58Z')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'ts',
  },
  {
    name: 'ts with microseconds',
    input: json((e) => (e.ts = '2026-11-21T09:59:58.123456Z')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'ts',
  },
  {
    name: 'ts with a +02:00 offset',
    input: json((e) => (e.ts = '2026-11-21T11:59:58.123+02:00')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'ts',
  },
  {
    name: 'ts without a zone',
    input: json((e) => (e.ts = '2026-11-21T09:59:58.123')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'ts',
  },
  {
    name: 'ts on 30 February',
    input: json((e) => (e.ts = '2026-02-30T09:59:58.123Z')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'ts',
  },
  {
    name: 'ts as epoch milliseconds',
    input: json((e) => (e.ts = NOW)),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'ts',
  },
  // Schema version.
  {
    name: 'schema_version 2',
    input: json((e) => (e.schema_version = 2)),
    code: 'AUDIT_ERR_UNKNOWN_SCHEMA_VERSION',
    path: 'schema_version',
  },
  {
    name: 'schema_version "1"',
    input: json((e) => (e.schema_version = '1')),
    code: 'AUDIT_ERR_UNKNOWN_SCHEMA_VERSION',
    path: 'schema_version',
  },
  {
    name: 'schema_version missing',
    input: json((e) => delete e.schema_version),
    code: 'AUDIT_ERR_UNKNOWN_SCHEMA_VERSION',
    path: 'schema_version',
  },
  {
    name: 'schema_version 1.5',
    input: json((e) => (e.schema_version = 1.5)),
    code: 'AUDIT_ERR_UNKNOWN_SCHEMA_VERSION',
    path: 'schema_version',
  },
  // Labels.
  {
    name: 'too many labels',
    input: json(
      (e) =>
        (e.labels = Object.fromEntries(Array.from({ length: MAX_LABELS + 1 }, (_, i) => [`k${i}`, 'v']))),
    ),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'labels',
  },
  {
    name: 'numeric label value',
    input: json((e) => (obj(e, 'labels').env = 1)),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'labels.env',
  },
  {
    name: 'object label value',
    input: json((e) => (obj(e, 'labels').env = { nested: 'x' })),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'labels.env',
  },
  {
    name: 'labels as an array',
    input: json((e) => (e.labels = ['env=prod'])),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: 'labels',
  },
  {
    name: 'label key over the limit',
    input: json((e) => (obj(e, 'labels')['k'.repeat(MAX_LABEL_KEY_LENGTH + 1)] = 'v')),
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: `labels["${'k'.repeat(64)}…"]`,
  },
  // Framing: size, encoding, syntax, shape.
  {
    name: 'event over MAX_EVENT_BYTES',
    input: json((e) => (e.x_padding = 'p'.repeat(MAX_EVENT_BYTES))),
    code: 'AUDIT_ERR_TOO_LARGE',
    path: '(root)',
  },
  {
    name: 'multi-byte event over MAX_EVENT_BYTES in bytes but not in characters',
    input: json((e) => (e.x_padding = '€'.repeat(Math.ceil(MAX_EVENT_BYTES / 3)))),
    code: 'AUDIT_ERR_TOO_LARGE',
    path: '(root)',
  },
  {
    name: 'oversized Buffer',
    input: Buffer.alloc(MAX_EVENT_BYTES + 1, 0x20),
    code: 'AUDIT_ERR_TOO_LARGE',
    path: '(root)',
  },
  {
    name: 'invalid UTF-8 bytes',
    input: Buffer.concat([
      Buffer.from(json(() => undefined).slice(0, -1)),
      Buffer.from([0x2c, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]),
    ]),
    code: 'AUDIT_ERR_MALFORMED_JSON',
    path: '(root)',
  },
  {
    name: 'overlong UTF-8 encoding',
    input: new Uint8Array([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d]),
    code: 'AUDIT_ERR_MALFORMED_JSON',
    path: '(root)',
  },
  {
    name: 'UTF-8 byte order mark',
    input: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json(() => undefined))]),
    code: 'AUDIT_ERR_MALFORMED_JSON',
    path: '(root)',
  },
  {
    name: 'truncated JSON',
    input: json(() => undefined).slice(0, 120),
    code: 'AUDIT_ERR_MALFORMED_JSON',
    path: '(root)',
  },
  { name: 'empty input', input: '', code: 'AUDIT_ERR_MALFORMED_JSON', path: '(root)' },
  {
    name: 'trailing garbage',
    input: `${json(() => undefined)}}`,
    code: 'AUDIT_ERR_MALFORMED_JSON',
    path: '(root)',
  },
  {
    name: 'single-quoted JSON',
    input: "{'schema_version':1}",
    code: 'AUDIT_ERR_MALFORMED_JSON',
    path: '(root)',
  },
  {
    name: 'JSON array instead of an object',
    input: `[${json(() => undefined)}]`,
    code: 'AUDIT_ERR_INVALID_EVENT',
    path: '(root)',
  },
  { name: 'JSON null', input: 'null', code: 'AUDIT_ERR_INVALID_EVENT', path: '(root)' },
  { name: 'JSON string', input: '"event"', code: 'AUDIT_ERR_INVALID_EVENT', path: '(root)' },
  { name: 'empty object', input: '{}', code: 'AUDIT_ERR_UNKNOWN_SCHEMA_VERSION', path: 'schema_version' },
];

function assertRejected(res: ParseResult, code: ParseErrorCode, path: string): void {
  assert.equal(res.ok, false, 'expected a rejection');
  if (res.ok) return;
  assert.equal(res.code, code, res.reason);
  assert.ok(
    res.issues.some((i) => i.path === path),
    `issues should name ${path}: ${JSON.stringify(res.issues)}`,
  );
  assert.ok(res.reason.includes(`${path}: `), `reason should name ${path}: ${res.reason}`);
}

describe('parseEvent rejects hostile and malformed events, naming the field', () => {
  it('covers at least 40 distinct cases', () => {
    assert.ok(cases.length >= 40, `${cases.length} cases`);
    assert.equal(new Set(cases.map((c) => c.name)).size, cases.length, 'case names are unique');
  });

  it('accepts the base event the cases start from', () => {
    const res = parseEvent(
      json(() => undefined),
      { now: NOW },
    );
    assert.ok(res.ok, res.ok ? '' : res.reason);
  });

  for (const c of cases) {
    it(c.name, () => {
      assertRejected(parseEvent(c.input, { now: NOW }), c.code, c.path);
    });
  }

  it('reports every problem of an event, not only the first', () => {
    const res = parseEvent(
      json((e) => {
        delete obj(e, 'client').id;
        e.duration_ms = -1;
        e.kind = 'nope';
      }),
      { now: NOW },
    );
    assert.equal(res.ok, false);
    if (res.ok) return;
    assert.match(res.reason, /client\.id: Required/);
    assert.match(res.reason, /duration_ms: must be >= 0/);
    assert.match(res.reason, /kind: must be one of/);
  });

  it('caps the issues it lists and says how many more there were', () => {
    const labels = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i]));
    const res = parseEvent(
      json((e) => (e.labels = labels)),
      { now: NOW },
    );
    assert.equal(res.ok, false);
    if (res.ok) return;
    assert.equal(res.issues.length, 20);
    assert.match(res.reason, /; and 10 more$/);
  });

  it('never copies control characters from the input into the reason', () => {
    const res = parseEvent('{"a\u0001":1,\n\u0007', { now: NOW });
    assert.equal(res.ok, false);
    if (res.ok) return;
    // eslint-disable-next-line no-control-regex -- asserting their absence
    assert.doesNotMatch(res.reason, /[\u0000-\u001f]/);
  });

  it('does not pollute Object.prototype when given __proto__ keys', () => {
    parseEvent('{"schema_version":1,"__proto__":{"polluted":true},"args":{"__proto__":{"polluted":true}}}');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('validateEvent rejects values JSON cannot carry', () => {
  const good = () => base();

  it('accepts a plain valid object and serializes raw', () => {
    const res = validateEvent(good(), { now: NOW });
    assert.ok(res.ok, res.ok ? '' : res.reason);
    assert.equal(res.raw, JSON.stringify(good()));
  });

  const objectCases: { name: string; build: () => unknown; code: ParseErrorCode; path: string }[] = [
    {
      name: 'bigint in args',
      build: () => ({ ...good(), args: { n: 10n } }),
      code: 'AUDIT_ERR_INVALID_EVENT',
      path: 'args.n',
    },
    {
      name: 'function at top level',
      build: () => ({ ...good(), hook: () => 1 }),
      code: 'AUDIT_ERR_INVALID_EVENT',
      path: 'hook',
    },
    {
      name: 'Date instead of a string',
      build: () => ({ ...good(), ts: new Date(NOW) }),
      code: 'AUDIT_ERR_INVALID_EVENT',
      path: 'ts',
    },
    {
      name: 'NaN duration',
      build: () => ({ ...good(), duration_ms: NaN }),
      code: 'AUDIT_ERR_INVALID_EVENT',
      path: 'duration_ms',
    },
    {
      name: 'undefined in an args array',
      build: () => ({ ...good(), args: { list: [1, undefined] } }),
      code: 'AUDIT_ERR_INVALID_EVENT',
      path: 'args.list[1]',
    },
    {
      name: 'Map as labels',
      build: () => ({ ...good(), labels: new Map([['a', 'b']]) }),
      code: 'AUDIT_ERR_INVALID_EVENT',
      path: 'labels',
    },
    {
      name: 'object with a polluted prototype',
      build: () => ({
        ...good(),
        client: Object.assign(Object.create({ id: 'inherited' }) as Obj, { name: 'x' }),
      }),
      code: 'AUDIT_ERR_INVALID_EVENT',
      path: 'client',
    },
    {
      name: 'cycle',
      build: () => {
        const e = good();
        (e.args as Obj).self = e.args;
        return e;
      },
      code: 'AUDIT_ERR_INVALID_EVENT',
      path: `args${'.self'.repeat(MAX_ARGS_DEPTH)}`,
    },
    {
      name: 'own __proto__ key',
      build: () => JSON.parse('{"schema_version":1,"__proto__":1}') as unknown,
      code: 'AUDIT_ERR_INVALID_EVENT',
      path: '__proto__',
    },
    { name: 'array root', build: () => [good()], code: 'AUDIT_ERR_INVALID_EVENT', path: '(root)' },
    { name: 'undefined root', build: () => undefined, code: 'AUDIT_ERR_INVALID_EVENT', path: '(root)' },
    {
      name: 'over MAX_EVENT_BYTES',
      build: () => ({ ...good(), pad: 'p'.repeat(MAX_EVENT_BYTES) }),
      code: 'AUDIT_ERR_TOO_LARGE',
      path: '(root)',
    },
    {
      name: 'schema_version 2',
      build: () => ({ ...good(), schema_version: 2 }),
      code: 'AUDIT_ERR_UNKNOWN_SCHEMA_VERSION',
      path: 'schema_version',
    },
  ];
  for (const c of objectCases) {
    it(c.name, () => assertRejected(validateEvent(c.build(), { now: NOW }), c.code, c.path));
  }

  it('treats undefined members as absent, like JSON.stringify', () => {
    const res = validateEvent(
      { ...good(), trace_id: undefined, client: { id: 'c', name: undefined } },
      { now: NOW },
    );
    assert.ok(res.ok, res.ok ? '' : res.reason);
    assert.equal('trace_id' in res.event, false);
  });
});
