import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createEventRedactor, SECRET_PATTERNS } from '../src/index.js';
import { mayContainSecret } from '../src/triggers.js';
import { mayHoldShapedSecret } from '../src/text.js';
import { ordinaryCorpus, secretCorpus } from '@mcp-audit/e2e/dist/fixtures/secret-corpus.js';

const redactor = createEventRedactor({ fingerprintKey: 'test-redaction-key-0123456789' });
const GH = `ghp_${'Zy9'.repeat(12)}`;

/** The gate `scanText` had before the prefilter: a pattern runs when it fits and a trigger occurs. */
function triggered(s: string): boolean {
  const lower = s.toLowerCase();
  return SECRET_PATTERNS.some(
    (p) => s.length >= p.minLength && p.triggers.some((t) => (p.ignoreCase ? lower : s).includes(t)),
  );
}

const TRIGGERS = [...new Set(SECRET_PATTERNS.flatMap((p) => p.triggers))];

/** A trigger with its letters in random case, i and k sometimes as İ and the Kelvin sign. */
const disguised = fc
  .tuple(
    fc.constantFrom(...TRIGGERS),
    fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 32, maxLength: 32 }),
  )
  .map(([t, rolls]) =>
    [...t]
      .map((c, i) => {
        const roll = rolls[i % rolls.length]!;
        if (roll === 3 && c.toLowerCase() === 'i') return '\u0130';
        if (roll === 3 && c.toLowerCase() === 'k') return '\u212a';
        return roll % 2 === 0 ? c.toLowerCase() : c.toUpperCase();
      })
      .join(''),
  );

const mixed = fc
  .array(
    fc.oneof(
      fc.constantFrom(...TRIGGERS),
      disguised,
      fc.string({ maxLength: 6 }),
      fc.constantFrom(' ', '=', ':', '\u017f', '\u0131', 'x'.repeat(40), '0123456789abcdef'.repeat(4)),
    ),
    { maxLength: 6 },
  )
  .map((parts) => parts.join(''));

describe('the trigger prefilter', () => {
  it('passes every string whose triggers would run a pattern', () => {
    fc.assert(
      fc.property(mixed, (s) => {
        if (triggered(s)) assert.ok(mayContainSecret(s), JSON.stringify(s));
      }),
      { numRuns: 5000 },
    );
  });

  it('passes every sample of the corpus, and the ordinary texts the gate passes', () => {
    for (const seed of [1, 2, 3]) {
      // Secrets known by their shape alone (a bare AWS secret key, base64) pass the shape gate instead.
      for (const sample of secretCorpus(seed))
        assert.ok(mayContainSecret(sample.text) || mayHoldShapedSecret(sample.text), sample.name);
    }
    for (const text of ordinaryCorpus()) if (triggered(text)) assert.ok(mayContainSecret(text), text);
  });

  it('knows every character outside ASCII that lower-cases to ASCII', () => {
    const found: number[] = [];
    for (let cp = 0x80; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const lower = String.fromCodePoint(cp).toLowerCase();
      for (let i = 0; i < lower.length; i++) {
        if (lower.charCodeAt(i) < 0x80) {
          found.push(cp);
          break;
        }
      }
    }
    // triggers.ts lists these two; a new one in a later Unicode version must be added there.
    assert.deepEqual(found, [0x130, 0x212a]);
  });

  it('lets most ordinary strings skip the patterns', () => {
    for (const s of ['tools/call', 'claude-desktop', '2026-11-21T09:59:58.123Z', 'a'.repeat(64)]) {
      assert.equal(mayContainSecret(s), false, s);
    }
  });
});

describe('redactEvent skips the raw pass only when it could find nothing', () => {
  function event(): Record<string, unknown> {
    return {
      schema_version: 1,
      event_id: '01912d68-783e-7a55-8c2f-3c9d4b6a1e20',
      kind: 'tool_call',
      client: { id: 'client-42', session_id: 'sess-7f3a' },
      auth: { method: 'api_key', result: 'success' },
      args: { repo: 'acme/app', list: [1, 'two', { three: 3 }] },
      labels: { team: 'platform' },
    };
  }

  it('returns the raw text itself when it holds nothing more than the clean event', () => {
    const raw = JSON.stringify(event());
    const r = redactor.redactEvent(event(), raw);
    assert.equal(r.raw, raw);
    assert.equal(r.redactions, 0);
    // Order and spacing of the raw text do not matter.
    const doc = event();
    const reordered = JSON.stringify({ labels: doc.labels, ...doc }, null, 2);
    assert.equal(redactor.redactEvent(event(), reordered).raw, reordered);
  });

  it('redacts a secret in a duplicate key that JSON.parse keeps', () => {
    const raw = JSON.stringify(event()).replace('"team":"platform"', `"team":"platform","team":"${GH}"`);
    const r = redactor.redactEvent(event(), raw);
    assert.ok(!r.raw.includes(GH), r.raw);
  });

  it('redacts what only the raw copy holds: unknown fields, longer arrays, other values', () => {
    const variants: Array<(e: Record<string, unknown>) => void> = [
      (e) => (e.extra = { note: `token ${GH}` }),
      (e) => (e.args as { list: unknown[] }).list.push(GH),
      (e) => ((e.client as Record<string, unknown>).password = 'hunter2-hunter2'),
      (e) => ((e.args as Record<string, unknown>).repo = GH),
      (e) => ((e.args as Record<string, unknown>).list = { 0: 1, 1: GH }),
    ];
    for (const edit of variants) {
      const doc = event();
      edit(doc);
      const r = redactor.redactEvent(event(), JSON.stringify(doc));
      assert.ok(!r.raw.includes(GH) && !r.raw.includes('hunter2'), r.raw);
      assert.ok(r.redactions > 0);
    }
  });

  it('compares the raw copy with what the event pass saw, not with the event', () => {
    // A getter that shows a clean value once and the secret afterwards, and a toJSON that hides it.
    let reads = 0;
    const args = {
      get note(): string {
        return reads++ === 0 ? 'clean' : GH;
      },
    };
    const e1 = { ...event(), args };
    const r1 = redactor.redactEvent(e1, JSON.stringify({ ...event(), args: { note: GH } }));
    assert.ok(!r1.raw.includes(GH), r1.raw);

    const e2 = { ...event(), args: { note: { toJSON: () => 'clean' } } };
    const r2 = redactor.redactEvent(e2, JSON.stringify({ ...event(), args: { note: { x: GH } } }));
    assert.ok(!r2.raw.includes(GH), r2.raw);
  });

  it('still caps a raw copy nested deeper than maxDepth', () => {
    const shallow = createEventRedactor({ fingerprintKey: 'k'.repeat(20), maxDepth: 4 });
    const deep = { ...event(), args: { a: { b: { c: { d: 1 } } } } };
    const r = shallow.redactEvent(deep, JSON.stringify(deep));
    assert.ok(r.raw.includes('[TRUNCATED:max_depth]'), r.raw);
    assert.ok(r.kinds.includes('max_depth'));
  });

  it('treats a __proto__ key in the raw copy like any other unknown field', () => {
    const raw = JSON.stringify(event()).replace('{', `{"__proto__":{"password":"hunter2-hunter2"},`);
    const r = redactor.redactEvent(event(), raw);
    assert.ok(!r.raw.includes('hunter2'), r.raw);
  });

  it('gives the same result as before on events with and without secrets', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.boolean(), (extra, withSecret) => {
        const e = { ...event(), args: { extra, ...(withSecret ? { token: GH } : {}) } };
        const raw = JSON.stringify({ ...e, unknown: extra });
        const r = redactor.redactEvent(e, raw);
        // The reference: the raw copy redacted on its own, as redactValue does with the same rules
        // for every field outside the envelope.
        const alone = redactor.redactEvent(JSON.parse(raw) as object);
        assert.deepEqual(JSON.parse(r.raw), JSON.parse(alone.raw));
      }),
      { numRuns: 300 },
    );
  });
});
