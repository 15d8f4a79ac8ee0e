import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AuditError } from '@mcp-audit/service-kit';
import { splitJsonArray, splitNdjson } from '../src/split-body.js';

const text = (items: Buffer[]) => items.map((b) => b.toString('utf8'));
const split = (s: string) => text(splitJsonArray(Buffer.from(s, 'utf8')));

test('JSON array: each item is the exact text between its delimiters', () => {
  const a = '{ "k" : "a,]}\\"\\\\" ,\n "n": [1, {"x": "]"}] }';
  const b = '{"u":"é\\u00e9 ✓"}';
  assert.deepEqual(split(` \n[ ${a} ,\t${b}\r\n] \n`), [a, b]);
  assert.deepEqual(split('[1,"x",null,[],{}]'), ['1', '"x"', 'null', '[]', '{}']);
  assert.deepEqual(split('[]'), []);
  assert.deepEqual(split(' [ ] '), []);
  // One object on its own is one item, as before.
  assert.deepEqual(split(' {"a":1} \n'), ['{"a":1}']);
});

test('JSON array: the bytes are sliced, never decoded', () => {
  const item = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
  const body = Buffer.concat([Buffer.from('['), item, Buffer.from(']')]);
  const [got] = splitJsonArray(body);
  assert.ok(got && got.equals(item));
});

test('JSON array: items keep what JSON.parse would merge (duplicate keys)', () => {
  assert.deepEqual(split('[{"client":{"id":"a","id":"b"}}]'), ['{"client":{"id":"a","id":"b"}}']);
});

test('JSON array: malformed structure is a 400 naming the byte', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /the body is empty at byte 0/],
    ['   ', /the body is empty at byte 3/],
    ['x', /expected '\[' but found 'x' at byte 0/],
    ['[', /the array is not closed .* at byte 1/],
    ['[{"a":1}', /not closed .* at byte 8/],
    ['[{"a":1', /the item starting at byte 1 is not closed at byte 7/],
    ['[1,]', /expected an item but found '\]' at byte 3/],
    ['[,1]', /expected an item but found ',' at byte 1/],
    ['[1,,2]', /expected an item but found ',' at byte 3/],
    ['[{"a":1} {"b":2}]', /expected ',' or '\]' but found '\{' at byte 9/],
    ['["a" "b"]', /expected ',' or '\]' but found '"' at byte 5/],
    ['[1 2]', /expected ',' or '\]' but found '2' at byte 3/],
    ['[1"a"]', /expected ',' or '\]' but found '"' at byte 2/],
    ['[{"a":"x}]', /unterminated string at byte 6/],
    ['[{"a":"x\\"}]', /unterminated string at byte 6/],
    ['[{]}', /expected '\}' but found '\]' at byte 2/],
    ['[}]', /expected ',' or '\]' but found '\}' at byte 1/],
    ['[1] x', /unexpected 'x' after the array at byte 4/],
    ['[1][2]', /unexpected '\[' after the array at byte 3/],
  ];
  for (const [body, message] of cases) {
    assert.throws(
      () => split(body),
      (err: unknown) =>
        err instanceof AuditError && err.code === 'AUDIT_ERR_INVALID_REQUEST' && message.test(err.message),
      JSON.stringify(body),
    );
  }
});

test('JSON array: hostile nesting costs no stack', () => {
  const deep = '['.repeat(200_000) + ']'.repeat(200_000);
  assert.deepEqual(
    split(`[${deep}]`).map((s) => s.length),
    [deep.length],
  );
});

test('JSON array: for any JSON array, items are the elements as serialized', () => {
  fc.assert(
    fc.property(fc.array(fc.jsonValue()), fc.boolean(), (values, pretty) => {
      const body = JSON.stringify(values, null, pretty ? 2 : undefined);
      const items = split(body);
      assert.equal(items.length, values.length);
      items.forEach((item, i) => assert.deepEqual(JSON.parse(item), JSON.parse(JSON.stringify(values[i]))));
      if (!pretty)
        assert.deepEqual(
          items,
          values.map((v) => JSON.stringify(v)),
        );
    }),
    { numRuns: 300 },
  );
});

test('NDJSON: non-blank lines, CR of a CRLF dropped, last line without LF kept', () => {
  const lines = (s: string) => text(splitNdjson(Buffer.from(s, 'utf8')));
  assert.deepEqual(lines('{"a":1}\r\n\n  \n{"b":2}\n{"c":3}'), ['{"a":1}', '{"b":2}', '{"c":3}']);
  assert.deepEqual(lines(''), []);
  assert.deepEqual(lines('\n\r\n'), []);
  assert.deepEqual(lines(' {"a":1} '), [' {"a":1} ']);
});
