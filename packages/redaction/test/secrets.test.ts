import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { createRedactor, MARKER_RE, redactString, redactValue } from '../src/index.js';
import {
  ordinaryCorpus,
  secretCorpus,
  type SecretSample,
} from '@mcp-audit/e2e/dist/fixtures/secret-corpus.js';

const KEY = 'test-redaction-key-0123456789';
const redactor = createRedactor({ fingerprintKey: KEY });
const corpus = secretCorpus(1);
const other = secretCorpus(2);

/** Not the secret, and not any 12-character piece of it either. */
function assertAbsent(out: unknown, s: SecretSample): void {
  const json = JSON.stringify(out);
  // JSON escapes newlines in PEM blocks; compare against the escaped form too.
  const forms = [s.secret, JSON.stringify(s.secret).slice(1, -1)];
  for (const secret of forms) {
    assert.ok(secret.length >= 12, `${s.name}: sample too short to test`);
    for (let i = 0; i + 12 <= secret.length; i++) {
      const piece = secret.slice(i, i + 12);
      assert.ok(!json.includes(piece), `${s.name}: "${piece}" survived in ${json.slice(0, 300)}`);
    }
  }
}

function markers(out: unknown): string[] {
  return JSON.stringify(out).match(MARKER_RE) ?? [];
}

/** Args as an MCP tool would get them, with the secret at depth 3+ in objects and arrays. */
function nestedArgs(text: string): unknown {
  return {
    query: 'list open incidents',
    options: { retry: { policies: [{ name: 'default', headers: { 'X-Trace': 'abc' }, note: text }] } },
    steps: [[['fetch', { payload: { body: text } }]]],
  };
}

describe('secret corpus', () => {
  it('has at least 30 formats, all distinct between seeds', () => {
    assert.ok(corpus.length >= 30, `only ${corpus.length} formats`);
    for (let i = 0; i < corpus.length; i++) assert.notEqual(corpus[i]!.secret, other[i]!.secret);
  });

  for (const s of corpus) {
    describe(s.name, () => {
      it('is removed from nested args (depth 3+, objects and arrays)', () => {
        const r = redactor.redactValue(nestedArgs(s.text));
        assertAbsent(r.value, s);
        assert.ok(markers(r.value).length >= 2, 'expected a marker in both places');
        assert.ok(r.redactions >= 2);
        assert.ok(r.kinds.length >= 1);
        // The surrounding structure and ordinary fields are untouched.
        const v = r.value as { query: string; options: { retry: { policies: Array<{ headers: unknown }> } } };
        assert.equal(v.query, 'list open incidents');
        assert.deepEqual(v.options.retry.policies[0]!.headers, { 'X-Trace': 'abc' });
      });

      it('is removed from an error message, keeping the sentence', () => {
        const msg = `upstream call failed after 3 retries (used ${s.text}) — check the tool config`;
        const r = redactor.redactString(msg);
        assertAbsent(r.value, s);
        assert.ok(r.value.startsWith('upstream call failed after 3 retries (used '), r.value);
        assert.ok(r.value.endsWith(' — check the tool config'), r.value);
        assert.equal(markers(r.value).length >= 1, true);
      });

      it('is removed under an innocuous key', () => {
        const r = redactor.redactValue({ data: s.text, description: `see ${s.text}`, list: [s.text] });
        assertAbsent(r.value, s);
        assert.ok(markers(r.value).length >= 3);
      });

      it('gets the same fingerprint in two events and a different one for a different secret', () => {
        const a = markers(redactor.redactValue({ event: 1, args: { x: s.text } }).value);
        const b = markers(redactor.redactString(`event two: ${s.text}.`).value);
        assert.deepEqual(a, b);
        const o = other.find((x) => x.name === s.name)!;
        const c = markers(redactor.redactValue({ event: 3, args: { x: o.text } }).value);
        assert.notDeepEqual(a, c);
      });
    });
  }
});

describe('fingerprints', () => {
  it('are the first 8 hex chars of HMAC-SHA256(key, secret)', () => {
    const token = corpus.find((s) => s.name === 'github_pat_classic')!.secret;
    const expected = createHmac('sha256', KEY).update(token).digest('hex').slice(0, 8);
    assert.equal(redactor.redactString(token).value, `[REDACTED:github_token:${expected}]`);
    assert.equal(redactor.fingerprint(token), expected);
  });

  it('depend on the key', () => {
    const token = corpus.find((s) => s.name === 'npm')!.secret;
    const a = redactString(token, { fingerprintKey: 'key-one-0123456789' }).value;
    const b = redactString(token, { fingerprintKey: Buffer.from('key-two-0123456789') }).value;
    assert.notEqual(a, b);
  });

  it('correlate a token under a credential key with the same token found in text', () => {
    const token = corpus.find((s) => s.name === 'bearer_opaque')!.secret;
    const byKey = markers(redactor.redactValue({ headers: { Authorization: `Bearer ${token}` } }).value);
    const byText = markers(redactor.redactString(`curl -H 'Authorization: Bearer ${token}'`).value);
    assert.equal(byKey[0]!.split(':')[2], byText[0]!.split(':')[2]);
  });

  it('use a random per-process key when none is given', () => {
    const r = redactValue({ password: 'correct horse battery staple' });
    assert.match((r.value as { password: string }).password, /^\[REDACTED:password:[0-9a-f]{8}\]$/);
  });

  it('reject an empty key', () => {
    assert.throws(() => createRedactor({ fingerprintKey: '' }), TypeError);
  });
});

describe('ordinary text', () => {
  const ordinary = ordinaryCorpus();

  it('has at least 20 samples', () => assert.ok(ordinary.length >= 20));

  for (const s of ordinary) {
    it(`keeps ${JSON.stringify(s.length > 60 ? s.slice(0, 60) + '…' : s)}`, () => {
      const r = redactor.redactString(s);
      assert.equal(r.value, s);
      assert.equal(r.redactions, 0);
      const v = redactor.redactValue({ a: { b: { c: [s] } }, text: s });
      assert.deepEqual(v.value, { a: { b: { c: [s] } }, text: s });
    });
  }

  it('keeps numbers, booleans and null as they are', () => {
    const input = { n: 42, f: -0.5, t: true, z: null, list: [1, 'two', false] };
    assert.deepEqual(redactor.redactValue(input).value, input);
  });

  it('returns a copy, not the input', () => {
    const input = { a: { b: [1, 2] } };
    const out = redactor.redactValue(input).value as typeof input;
    assert.deepEqual(out, input);
    assert.notEqual(out, input);
    assert.notEqual(out.a, input.a);
    assert.notEqual(out.a.b, input.a.b);
  });
});

describe('free text details', () => {
  it('replaces only the password of a connection string', () => {
    const r = redactor.redactString('dial postgres://app:pa55w0rd-Xy9@db.internal:5432/orders failed');
    assert.match(
      r.value,
      /^dial postgres:\/\/app:\[REDACTED:connection_password:[0-9a-f]{8}\]@db\.internal:5432\/orders failed$/,
    );
  });

  it('handles an @ inside the password', () => {
    const r = redactor.redactString('mysql://root:p@ss@word1@10.0.0.5/app');
    assert.ok(!r.value.includes('ss@word1'), r.value);
    assert.ok(r.value.endsWith('@10.0.0.5/app'));
  });

  it('replaces key=value secrets in prose and JSON text', () => {
    const r = redactor.redactString(
      'login failed for {"user":"bob","password":"hunter2-Hunter2"} with api_key=abc123def',
    );
    assert.ok(!r.value.includes('hunter2'));
    assert.ok(!r.value.includes('abc123def'));
    assert.ok(r.value.includes('"user":"bob"'));
    assert.deepEqual(r.kinds, ['api_key', 'password']);
  });

  it('leaves placeholders after password= alone', () => {
    for (const s of ['password=*****', 'password: <redacted>', 'token=${GITHUB_TOKEN}', 'password: true']) {
      assert.equal(redactor.redactString(s).value, s);
    }
  });

  it('finds a secret after an escaped newline in a log line', () => {
    const token = corpus.find((s) => s.name === 'openai_legacy')!.secret;
    const r = redactor.redactString(`config dump:\\n${token}\\n`);
    assert.ok(!r.value.includes(token));
  });

  it('redacts a PEM block cut off before its END line', () => {
    const block = corpus.find((s) => s.name === 'pem_rsa')!.secret;
    const cut = block.slice(0, 400);
    const r = redactor.redactString(`bad key: ${cut}`);
    assert.equal(r.value.indexOf(cut.slice(40, 60)), -1);
  });

  it('reports each kind once, sorted', () => {
    const c = corpus;
    const t = (n: string) => c.find((s) => s.name === n)!.text;
    const r = redactor.redactString(`${t('npm')} ${t('jwt')} ${t('npm')}`);
    assert.equal(r.redactions, 3);
    assert.deepEqual(r.kinds, ['jwt', 'npm_token']);
  });
});
