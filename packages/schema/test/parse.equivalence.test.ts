import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseEvent, type ParseResult } from '../src/index.js';
import { referenceParseEvent } from './reference-parse.js';
import { DELETE, NOW, gatewayToolCall, setPath, type Obj } from './fixtures.js';

// The gateway tool call with an IPv6 address and no agent.
const base = (): Obj => gatewayToolCall({ ip: '2001:db8::7', agent: undefined });

const PATHS = [
  'schema_version',
  'event_id',
  'ts',
  'kind',
  'source',
  'source.type',
  'source.id',
  'client',
  'client.id',
  'client.ip',
  'client.session_id',
  'client.x_device',
  'server.transport',
  'method',
  'tool',
  'tool.name',
  'tool.definition_hash',
  'outcome',
  'http_status',
  'rpc_error_code',
  'tool_is_error',
  'trace_id',
  'auth',
  'auth.result',
  'error',
  'error.code',
  'error.message',
  'duration_ms',
  'args',
  'args.note',
  'args.options',
  'labels',
  'labels.k',
  'x_unknown',
];

const SPECIAL_VALUES: unknown[] = [
  DELETE,
  '',
  'a:b',
  'x'.repeat(1025),
  'line\nbreak',
  'nul\u0000',
  'lone\ud800',
  '\u{1F600} ok',
  'ok',
  'error',
  'auth',
  'auth_failed',
  'tool_call',
  'failure',
  'sdk',
  -1,
  0,
  100,
  2 ** 31,
  1.5,
  null,
  true,
  [],
  {},
  { method: 'api_key', result: 'failure' },
  { code: 'E', message: 'm' },
  Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])),
  { blob: 'x'.repeat(64 * 1024) },
];

const value = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(...SPECIAL_VALUES));

/** Edits of the text that no object can express: duplicates, escapes, forbidden keys, bad JSON. */
const TEXT_EDITS: Array<(t: string) => string> = [
  (t) => t.replace('"client":{', '"client":{"id":"someone-else",'),
  (t) => t.replace('"labels":{', '"labels":{"\\u0065nv":"dev",'),
  (t) => t.replace('"kind":', '"kind":"auth","kind":'),
  // A merged duplicate whose lost colon an escaped one makes up for.
  (t) => t.replace('"args":{', '"args":{"c":"\\u003a","path":"dup",'),
  (t) => t.replace('"ts":', '"t\\u003as":"x","ts":'),
  (t) => t.replace('"args":{', '"args":{"a:b":{"c:d":"e:f"},'),
  (t) => t.replace('{', '{"__proto__":{"admin":true},'),
  (t) => t.replace('"args":{', '"args":{"constructor":1,'),
  (t) => t.replace('"args":{', '"args":{"n":1e400,'),
  (t) => t.replace('"args":{', '"args":{"n":-1E+2,'),
  (t) => t.replace('"args":{', '"args":{"s":"\\u0000",'),
  (t) => t.replace('"args":{', '"args":{"s":"\\ud800",'),
  (t) => t.replace('"args":{', '"args":{"s":"\\ud83d\\ude00",'),
  (t) => t.replace('"args":{', '"args":{"s":"\\"quoted\\\\",'),
  (t) => t.replace('"args":{', `"args":{"deep":${'['.repeat(40)}${']'.repeat(40)},`),
  (t) => t.replace('"args":{', `"args":{"deep":${'{"a":'.repeat(32)}1${'}'.repeat(32)},`),
  (t) => ` ${t}\n`,
  (t) => t.slice(0, -1),
  (t) => `\ufeff${t}`,
  (t) => `[${t}]`,
];

const input = fc.record({
  edits: fc.array(fc.tuple(fc.constantFrom(...PATHS), value), { maxLength: 4 }),
  textEdits: fc.array(fc.integer({ min: 0, max: TEXT_EDITS.length - 1 }), { maxLength: 2 }),
  pretty: fc.boolean(),
  form: fc.constantFrom('string', 'buffer'),
});

describe('parseEvent matches its reference implementation', () => {
  it('on valid events, events broken in a field and broken texts', () => {
    fc.assert(
      fc.property(input, ({ edits, textEdits, pretty, form }) => {
        const e = base();
        for (const [path, v] of edits) setPath(e, path, v);
        let text = JSON.stringify(e, null, pretty ? 2 : undefined);
        for (const i of textEdits) text = TEXT_EDITS[i]!(text);
        const arg = form === 'buffer' ? Buffer.from(text) : text;
        const actual: ParseResult = parseEvent(arg, { now: NOW });
        assert.deepStrictEqual(actual, referenceParseEvent(arg, { now: NOW }));
      }),
      { numRuns: 3000 },
    );
  });

  it('on each special value in each field', () => {
    for (const path of PATHS) {
      for (const v of SPECIAL_VALUES) {
        const e = base();
        setPath(e, path, v);
        const text = JSON.stringify(e);
        assert.deepStrictEqual(parseEvent(text, { now: NOW }), referenceParseEvent(text, { now: NOW }), text);
      }
    }
  });

  it('on each text edit alone', () => {
    for (const edit of TEXT_EDITS) {
      const text = edit(JSON.stringify(base()));
      for (const arg of [text, Buffer.from(text)]) {
        assert.deepStrictEqual(parseEvent(arg, { now: NOW }), referenceParseEvent(arg, { now: NOW }), text);
      }
    }
  });

  it('finds a duplicate key whose lost colon an escaped colon makes up for', () => {
    const text = JSON.stringify(base()).replace('"args":{', '"args":{"c":"\\u003a","path":"dup",');
    const res = parseEvent(text, { now: NOW });
    assert.equal(res.ok ? 'ok' : res.reason, 'args.path: duplicate key');
  });

  it('gives the same results while Object.prototype has an enumerable property', () => {
    const texts = [JSON.stringify(base()), TEXT_EDITS[0]!(JSON.stringify(base()))];
    const expected = texts.map((t) => referenceParseEvent(t, { now: NOW }));
    Object.defineProperty(Object.prototype, 'polluted', {
      value: 1,
      enumerable: true,
      configurable: true,
      writable: true,
    });
    try {
      const actual = texts.map((t) => parseEvent(t, { now: NOW }));
      for (let i = 0; i < texts.length; i++) {
        // Compared field by field: deepStrictEqual itself would see the polluted property.
        assert.equal(actual[i]!.ok, expected[i]!.ok);
        assert.equal(JSON.stringify(actual[i]), JSON.stringify(expected[i]));
      }
    } finally {
      delete (Object.prototype as Record<string, unknown>).polluted;
    }
  });
});
