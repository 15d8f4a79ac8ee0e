import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRedactor } from '@mcp-audit/redaction';
import {
  cleanText,
  cutText,
  defaultTextRedactor,
  eventIdentifier,
  eventMethod,
  MAX_EVENT_IDENTIFIER,
  requestNames,
  wellFormedText,
  wellFormedValue,
} from '../src/index.js';

const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

describe('text sanitizers (shared with the gateway)', () => {
  it('cutText never splits a surrogate pair', () => {
    assert.equal(cutText('ab😀c', 3), 'ab');
    assert.equal(cutText('ab😀c', 4), 'ab😀');
    assert.equal(cutText('short', 10), 'short');
  });

  it('wellFormedText replaces NUL and lone surrogates only, and cuts when asked', () => {
    assert.equal(wellFormedText('a\u0000b\ud800c\udc00\n😀'), 'a\ufffdb\ufffdc\ufffd\n😀');
    assert.equal(wellFormedText('\u0000'.repeat(10), 3), '\ufffd\ufffd\ufffd');
  });

  it('wellFormedValue rewrites strings and keys in a copy, returns the same value when clean', () => {
    const clean = { a: ['x', { b: 1 }], c: null };
    assert.equal(wellFormedValue(clean), clean);
    const dirty = { ['k\u0000']: ['v\ud800', { n: 1 }], ok: 'fine' };
    const out = wellFormedValue(dirty);
    assert.deepEqual(out, { 'k\ufffd': ['v\ufffd', { n: 1 }], ok: 'fine' });
    assert.deepEqual(Object.keys(dirty), ['k\u0000', 'ok'], 'the input is untouched');
    const proto = wellFormedValue(JSON.parse('{"__proto__":{"x":"\\u0000"}}') as Record<string, unknown>);
    assert.ok(Object.hasOwn(proto, '__proto__'), 'a __proto__ key stays an own key');
    assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  });

  it('cleanText turns controls into spaces, lone surrogates into U+FFFD, trims and cuts', () => {
    assert.equal(cleanText(' a\u0000b\r\nc\ud800\u007f '), 'a b  c\ufffd');
    assert.equal(cleanText('\u0001\u0002'), undefined);
    assert.equal(cleanText(42), undefined);
    assert.equal(cleanText('x'.repeat(300))?.length, 256);
  });

  it('eventIdentifier escapes controls, replaces lone surrogates, redacts, then cuts', () => {
    assert.deepEqual(eventIdentifier('', defaultTextRedactor), { value: '(empty)', problems: ['empty'] });
    assert.deepEqual(eventIdentifier('tools/call', defaultTextRedactor), {
      value: 'tools/call',
      problems: [],
    });
    const long = eventIdentifier(`a\u0007\ud800${'z'.repeat(2000)}`, defaultTextRedactor);
    assert.deepEqual(long.problems, ['invalid_unicode', 'control_characters', 'too_long']);
    assert.ok(long.value.startsWith('a\\u0007\ufffdzz'));
    assert.equal(long.value.length, MAX_EVENT_IDENTIFIER);
    const token = `ghp_${'a1B2c3D4e5'.repeat(3)}abcdef`;
    const keyed = createRedactor({ fingerprintKey: 'k'.repeat(32) });
    assert.equal(eventIdentifier(`t-${token}`, keyed).value, keyed.redactString(`t-${token}`).value);
  });

  it('eventMethod and requestNames label what changed with the original digest and length', () => {
    assert.deepEqual(eventMethod('tools/list', defaultTextRedactor), { method: 'tools/list' });
    const m = eventMethod('tools/\u0000list', defaultTextRedactor);
    assert.deepEqual(m, {
      method: 'tools/\\u0000list',
      labels: {
        invalid_method: 'control_characters',
        method_sha256: sha('tools/\u0000list'),
        method_length: '11',
      },
    });
    assert.deepEqual(requestNames('tools/call', 'echo', defaultTextRedactor), {
      method: 'tools/call',
      tool: 'echo',
    });
    assert.deepEqual(requestNames('tools/call', undefined, defaultTextRedactor), {
      method: 'tools/call',
      tool: '(missing)',
      labels: { invalid_tool_name: 'missing' },
    });
    assert.deepEqual(requestNames('tools/call', 'e\ud800', defaultTextRedactor).labels, {
      invalid_tool_name: 'invalid_unicode',
      tool_name_sha256: sha('e\ud800'),
      tool_name_length: '2',
    });
  });
});
