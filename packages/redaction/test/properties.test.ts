import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createRedactor } from '../src/index.js';
import { secretCorpus } from '@mcp-audit/e2e/dist/fixtures/secret-corpus.js';

const redactor = createRedactor({ fingerprintKey: 'test-redaction-key-0123456789' });
const samples = [...secretCorpus(11), ...secretCorpus(12)];

/**
 * Free text with real-shaped secrets mixed into random text. Parts are space-separated: a token
 * glued to random letters (`AKIA…0`) is no longer that token's format.
 */
const textWithSecrets = fc
  .array(
    fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.constantFrom(' ', ': ', '=', '"', '\n', ', ', 'password=', 'Bearer ', 'https://u:'),
      fc.constantFrom(...samples.map((s) => s.text)),
    ),
    { maxLength: 12 },
  )
  .map((parts) => parts.join(' '));

describe('properties', () => {
  it('never throws, on any value', () => {
    fc.assert(
      fc.property(
        fc.anything({ withBigInt: true, withDate: true, withNullPrototype: true, withSparseArray: true }),
        (v) => {
          redactor.redactValue(v);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('is idempotent on JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const once = redactor.redactValue(v).value;
        const twice = redactor.redactValue(once);
        assert.deepEqual(twice.value, once);
        assert.equal(twice.redactions, 0);
      }),
      { numRuns: 500 },
    );
  });

  it('is idempotent on text full of secrets, and removes them', () => {
    fc.assert(
      fc.property(textWithSecrets, fc.constantFrom('note', 'password', 'args'), (text, key) => {
        const once = redactor.redactValue({ [key]: text, list: [text] }).value;
        const json = JSON.stringify(once);
        for (const s of samples) {
          if (text.includes(s.text)) assert.ok(!json.includes(s.secret), `${s.name} survived: ${json}`);
        }
        assert.deepEqual(redactor.redactValue(once).value, once);
      }),
      { numRuns: 400 },
    );
  });

  it('leaves alphanumeric words alone', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[A-Za-z0-9]{1,32}$/), { maxLength: 20 }), (words) => {
        const text = words.join(' ');
        assert.equal(redactor.redactString(text).value, text);
        assert.deepEqual(redactor.redactValue({ words, text }).value, { words, text });
      }),
      { numRuns: 500 },
    );
  });
});
