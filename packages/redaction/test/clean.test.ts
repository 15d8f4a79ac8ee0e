import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createEventRedactor } from '../src/index.js';
import { ordinaryCorpus, secretCorpus } from '@mcp-audit/e2e/dist/fixtures/secret-corpus.js';

const redactor = createEventRedactor({ fingerprintKey: 'test-redaction-key-0123456789' });
const shallow = createEventRedactor({ fingerprintKey: 'test-redaction-key-0123456789', maxDepth: 4 });
const GH = `ghp_${'Zy9'.repeat(12)}`;
const MARKER = redactor.redactString(GH).value;

function event(): Record<string, unknown> {
  return {
    schema_version: 1,
    event_id: '01912d68-783e-7a55-8c2f-3c9d4b6a1e20',
    ts: '2024-06-01T12:34:56.789Z',
    kind: 'tool_call',
    source: { type: 'gateway', id: 'gw-1', version: '1.0.0' },
    client: { id: 'client-42', user: 'alice@example.com', session_id: 'sess-7f3a' },
    server: { name: 'github', transport: 'http' },
    method: 'tools/call',
    tool: { name: 'create_issue', definition_hash: 'e'.repeat(64) },
    outcome: 'ok',
    auth: { method: 'api_key', result: 'success', reason: 'ok' },
    duration_ms: 12,
    request_bytes: 100,
    response_bytes: 50,
    args: { repo: 'acme/app', list: [1, 'two', { three: 3 }] },
    labels: { team: 'platform' },
  };
}

/** Keys that take each branch of the rules: credential names, secret hints, envelope names. */
const KEYS = [
  'note',
  'password',
  'api_key',
  'authorization',
  'session_id',
  'auth',
  'client',
  'signing_key',
  'hmac',
  'token',
  `key_${GH}`,
  'x'.repeat(40),
];

const SAMPLES = [
  ...secretCorpus(1).map((s) => s.text),
  ...ordinaryCorpus().slice(0, 40),
  GH,
  MARKER,
  `Bearer ${GH}`,
  'A1b2C3d4E5f6G7h8I9j0K1l2',
  '',
];

const leaf = fc.oneof(
  fc.constantFrom(...SAMPLES),
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom([], {}),
);
const value = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('node'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom(...KEYS), tie('node'), { maxKeys: 3 }),
  ),
})).node;

/** Where an edit goes: an envelope field, a member of an envelope object, args, labels, unknown. */
const PLACES = [
  'args',
  'labels',
  'error',
  'client',
  'auth',
  'x_unknown',
  'tool',
  'client.name',
  'auth.reason',
];

function place(doc: Record<string, unknown>, where: string, key: string, v: unknown): void {
  const [top, member] = where.split('.') as [string, string | undefined];
  if (member !== undefined) {
    doc[top] = { ...(doc[top] as object), [member]: v };
    return;
  }
  const cur = doc[top];
  if (cur !== null && typeof cur === 'object' && !Array.isArray(cur))
    (cur as Record<string, unknown>)[key] = v;
  else doc[top] = { [key]: v };
}

function compare(r: typeof redactor, doc: Record<string, unknown>): boolean {
  const raw = JSON.stringify(doc);
  // `event` stands for parseEvent's output: values taken from the document at the same paths.
  const withDoc = r.redactEvent(JSON.parse(raw) as object, raw, JSON.parse(raw));
  const without = r.redactEvent(JSON.parse(raw) as object, raw);
  assert.deepStrictEqual(
    { event: withDoc.event, raw: withDoc.raw, redactions: withDoc.redactions, kinds: withDoc.kinds },
    { event: without.event, raw: without.raw, redactions: without.redactions, kinds: without.kinds },
    raw,
  );
  return without.redactions === 0;
}

describe('redactEvent with the parsed document (one pass without copying)', () => {
  it('gives the same event, raw copy, count and kinds as the full passes', () => {
    let clean = 0;
    let dirty = 0;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...PLACES), fc.constantFrom(...KEYS), value), { maxLength: 3 }),
        (edits) => {
          const doc = event();
          for (const [where, key, v] of edits) place(doc, where, key, v);
          if (compare(redactor, doc)) clean++;
          else dirty++;
          compare(shallow, doc);
        },
      ),
      { numRuns: 2000 },
    );
    // Both outcomes occur, so neither side of the comparison is vacuous.
    assert.ok(clean > 100 && dirty > 100, `${clean} clean, ${dirty} dirty`);
  });

  it('returns the event and the raw text themselves when nothing is found', () => {
    const doc = event();
    const raw = JSON.stringify(doc);
    const e = JSON.parse(raw) as object;
    const r = redactor.redactEvent(e, raw, JSON.parse(raw));
    assert.equal(r.event, e);
    assert.equal(r.raw, raw);
  });

  it('finds what only the document holds (an unknown field, a credential, a deep container)', () => {
    const cases: Array<[typeof redactor, (d: Record<string, unknown>) => void]> = [
      [redactor, (d) => (d.x_unknown = { note: `token ${GH}` })],
      [redactor, (d) => ((d.client as Record<string, unknown>).password = 'hunter2-hunter2')],
      [redactor, (d) => ((d.args as Record<string, unknown>).signing_key = 'A1b2C3d4E5f6G7h8I9j0K1l2')],
      [redactor, (d) => ((d.labels as Record<string, unknown>)[`k${GH}`] = 'v')],
      [shallow, (d) => ((d.args as Record<string, unknown>).deep = { a: { b: { c: 1 } } })],
    ];
    for (const [r, edit] of cases) {
      const doc = event();
      edit(doc);
      const raw = JSON.stringify(doc);
      // The event without the member: only the document shows it.
      const res = r.redactEvent(event(), raw, JSON.parse(raw));
      assert.ok(res.redactions > 0, raw);
      assert.ok(!res.raw.includes(GH) && !res.raw.includes('hunter2'), res.raw);
    }
  });
});
