/**
 * The false-positive rate of redaction on ordinary tool arguments and its detection rate on secrets,
 * measured and printed (node --test packages/redaction/dist/test/fp-rate.test.js). The ordinary
 * corpus is generated from a seed plus the hand-written ordinaryCorpus(); the secrets are the
 * shared corpus over many seeds plus secrets in prose and under hinting key names. The assertions
 * sit at conservative thresholds; the printed figures are what the README quotes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { createRedactor } from '../src/index.js';
import { Gen, ordinaryCorpus, secretCorpus } from '@mcp-audit/e2e/dist/fixtures/secret-corpus.js';

const redactor = createRedactor({ fingerprintKey: 'fp-rate-key-0123456789' });

const WORDS = (
  'report invoice customer order shipment analytics dashboard export quarterly summary draft final ' +
  'project source build release config settings backup archive images assets docs notes meeting ' +
  'budget forecast marketing campaign sales region north south europe america data table query ' +
  'results schema migration index token key secret password session cache public private access ' +
  'rotation policy the a of to and for with from on in by is was are be this that it as at we ' +
  'user account team admin service worker queue topic event stream partition offset consumer'
).split(' ');
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const ALNUM = UPPER + LOWER + '0123456789';

function word(g: Gen): string {
  return WORDS[Math.floor((parseInt(g.hex(4), 16) / 65536) * WORDS.length)]!;
}
const int = (g: Gen, n: number) => Math.floor((parseInt(g.hex(6), 16) / 0x1000000) * n);
const words = (g: Gen, n: number, sep = ' ') => Array.from({ length: n }, () => word(g)).join(sep);
const sentence = (g: Gen) => {
  const s = words(g, 6 + int(g, 14));
  return s[0]!.toUpperCase() + s.slice(1) + '.';
};
const uuid = (g: Gen) => {
  const h = g.hex(32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
};
const b64 = (b: Buffer) => b.toString('base64');

/** Ordinary values by category: what MCP tools get as arguments every day. */
function ordinaryValues(seed: number): Record<string, string[]> {
  const g = new Gen(seed);
  const n = 400;
  const many = (f: () => string, k = n) => Array.from({ length: k }, f);
  const image = (sig: string, size: number) => b64(Buffer.concat([Buffer.from(sig, 'hex'), g.bytes(size)]));
  return {
    paths: many(() =>
      int(g, 2) === 0
        ? `/${words(g, 2 + int(g, 4), '/')}/${word(g)}-${int(g, 1000)}.${['ts', 'json', 'log', 'csv', 'md'][int(g, 5)]}`
        : `C:\\Users\\${word(g)}\\${words(g, 2, '\\')}\\${word(g)}_${int(g, 99)}.docx`,
    ),
    uuids: many(() => (int(g, 3) === 0 ? uuid(g).toUpperCase() : uuid(g))),
    hashes: many(() => {
      const d = createHash(['sha1', 'sha256', 'md5', 'sha512'][int(g, 4)]!).update(g.hex(16)).digest();
      const k = int(g, 4);
      return k === 0
        ? d.toString('hex')
        : k === 1
          ? `sha256:${d.toString('hex')}`
          : k === 2
            ? `sha512-${createHash('sha512').update(d).digest('base64')}`
            : d.toString('hex').toUpperCase();
    }),
    git: many(() => (int(g, 2) === 0 ? g.hex(40) : `${g.hex(7)} ${sentence(g)}`)),
    images: many(
      () =>
        int(g, 2) === 0
          ? `data:image/png;base64,${image('89504e470d0a1a0a0000000d49484452', 200 + int(g, 4000))}`
          : image(['ffd8ffe000104a464946', '474946383961', '52494646'][int(g, 3)]!, 100 + int(g, 3000)),
      200,
    ),
    urls: many(
      () =>
        `https://${word(g)}.example.com/${words(g, 2, '/')}?page=${int(g, 50)}&q=${words(g, 2, '+')}&utm_source=${word(g)}&id=${uuid(g)}`,
    ),
    payloads: many(() =>
      JSON.stringify({
        id: int(g, 1e6),
        customer_id: `cus_${g.alnum(14)}`,
        order: {
          sku: `SKU-${g.pick(UPPER, 3)}-${int(g, 9999)}`,
          qty: int(g, 9) + 1,
          total: int(g, 99999) / 100,
        },
        created_at: new Date(1.7e12 + int(g, 1e10)).toISOString(),
        note: sentence(g),
        tags: [word(g), word(g)],
        request_id: uuid(g),
      }),
    ),
    prose: many(() => Array.from({ length: 3 + int(g, 10) }, () => sentence(g)).join(' '), 300),
    identifiers: many(() => {
      switch (int(g, 8)) {
        case 0:
          return `${word(g)}-${word(g)}-${g.hex(10)}-${g.pick(LOWER + '0123456789', 5)}`; // k8s pod
        case 1:
          return `${word(g)}${word(g)[0]!.toUpperCase()}${word(g)}${word(g)[0]!.toUpperCase()}Handler`;
        case 2:
          return `ghcr.io/${word(g)}/${word(g)}@sha256:${g.hex(64)}`;
        case 3:
          return `${word(g)}.${word(g)}@example.com`;
        case 4:
          return `10.${int(g, 255)}.${int(g, 255)}.${int(g, 255)}:${int(g, 65535)}`;
        case 5:
          return g.pick(ALNUM, 11); // a video id
        case 6:
          return `${word(g)}_${word(g)}_${word(g)}_${int(g, 100)}`;
        default:
          return `v${int(g, 10)}.${int(g, 30)}.${int(g, 100)}`;
      }
    }),
    /** Base64 of ordinary text and JSON: decoded by the base64 rule, and must come out unchanged. */
    base64_text: many(() =>
      b64(
        Buffer.from(
          int(g, 2) === 0
            ? sentence(g) + ' ' + sentence(g)
            : JSON.stringify({ user: word(g), page: int(g, 9), q: words(g, 3) }),
        ),
      ),
    ),
    /** Secret-like words followed by ordinary values, in prose and in key: value text. */
    tricky: many(() => {
      switch (int(g, 12)) {
        case 0:
          return `the ${word(g)} key is ${word(g)}-${word(g)}-${int(g, 2030)}`;
        case 1:
          // NOTE: not `token: <uuid>`: an explicit assignment is redacted whatever its value (a
          // UUID labelled token is often one: Heroku API keys are UUIDs), by design, before and now.
          return `token_type: Bearer, expires_in: ${int(g, 7200)}, scope: ${words(g, 2)}, ref ${uuid(g)}`;
        case 2:
          return `cache key ${g.hex(64)}`;
        case 3:
          return `secret ${word(g)}_${word(g)}_${int(g, 100)} was rotated on ${new Date(1.7e12 + int(g, 1e10)).toISOString()}`;
        case 4:
          return `The token endpoint is https://oauth2.${word(g)}.com/token?grant_type=client_credentials`;
        case 5:
          return `primary key ${word(g)}_id, ${word(g)}_id; sort key ${word(g)}#${int(g, 1e6)}`;
        case 6:
          return `password policy: at least 12 characters, rotated every ${int(g, 90)} days`;
        case 7:
          return `public key ssh-ed25519 ${b64(Buffer.concat([Buffer.from('0000000b7373682d6564323535313900000020', 'hex'), g.bytes(32)]))} ${word(g)}@${word(g)}`;
        case 8:
          return `request ${g.pick(ALNUM, 21)} (nanoid) for ${word(g)} took ${int(g, 900)} ms`;
        case 9:
          return `the key ${word(g)}/${word(g)}/${uuid(g)}.json was uploaded`;
        case 10:
          return `token count ${int(g, 1e5)}, max_tokens=${int(g, 8192)}, key=${word(g)}`;
        default:
          return `Secret Manager path projects/${word(g)}-${int(g, 1e6)}/secrets/${word(g)}-${word(g)}/versions/${int(g, 9)}`;
      }
    }),
    /** Ordinary values under key names that mention keys or tokens (the hint-key rule's risk). */
    keyed: many(() => {
      const v = [
        { idempotency_key: uuid(g) },
        { cache_key: `user:${int(g, 1e5)}:profile` },
        {
          public_key: `ssh-ed25519 ${b64(Buffer.concat([Buffer.from('0000000b7373682d6564323535313900000020', 'hex'), g.bytes(32)]))}`,
        },
        { next_page_token: b64(Buffer.from(JSON.stringify({ offset: int(g, 1e4) }))) },
        { sort_key: `${word(g)}#${int(g, 1e4)}` },
        { key: `${word(g)}/${word(g)}.json` },
        { object_key: `uploads/${uuid(g)}.png` },
        { commit_sha: g.hex(40) },
        { max_tokens: int(g, 4096) },
        { key_id: `${word(g)}-${int(g, 99)}` },
      ][int(g, 10)]!;
      return JSON.stringify(v);
    }),
  };
}

/** Secrets in the positions the rules look at, beyond the shared corpus. */
function extraSecrets(seed: number): Array<{ name: string; secret: string; value: unknown }> {
  const g = new Gen(seed);
  const out: Array<{ name: string; secret: string; value: unknown }> = [];
  for (let i = 0; i < 40; i++) {
    const aws = g.mixed(ALNUM + '+/', 40);
    const tok = g.b64url(24 + int(g, 40));
    const hex = g.hex(64);
    const pw = g.alnum(12) + g.pick('!#%*', 1) + g.alnum(6);
    out.push(
      { name: 'aws_bare', secret: aws, value: aws },
      { name: 'aws_prose', secret: aws, value: `the ${word(g)} secret key is ${aws}` },
      { name: 'token_prose', secret: tok, value: `use token ${tok} for the ${word(g)} import` },
      { name: 'password_prose', secret: pw, value: `${word(g)} password: ${pw}` },
      { name: 'hex_secret_prose', secret: hex, value: `signing secret ${hex}` },
      { name: 'key_hint', secret: tok, value: { key: tok } },
      { name: 'hmac_hint', secret: tok, value: { stripe_hmac: tok } },
      { name: 'gcp_key_id', secret: hex.slice(0, 40), value: { private_key_id: hex.slice(0, 40) } },
      {
        name: 'base64_env',
        secret: b64(Buffer.from(`DB_PASSWORD=${pw}\n`)),
        value: b64(Buffer.from(`DB_PASSWORD=${pw}\n`)),
      },
      {
        name: 'sk_hex',
        secret: `sk-${g.hex(32)}`,
        value: `OPENAI_BASE=https://api.deepseek.com key sk-${g.hex(32)}`,
      },
    );
    // sk_hex: the second hex differs from the first; the checked secret must be the one in the value.
    const last = out[out.length - 1]!;
    last.secret = (last.value as string).slice(-35);
  }
  return out;
}

const survives = (out: unknown, secret: string) => {
  const json = JSON.stringify(out);
  return json.includes(secret) || json.includes(JSON.stringify(secret).slice(1, -1));
};

describe('false positives and detection, measured', () => {
  it('changes almost no ordinary value and catches nearly every secret', () => {
    const t0 = performance.now();
    const ordinary: Record<string, { total: number; changed: number; examples: string[] }> = {};
    const add = (cat: string, v: string) => {
      const parsed = cat === 'keyed' || cat === 'payloads' ? (JSON.parse(v) as unknown) : undefined;
      const as = parsed ?? { value: v };
      const r = redactor.redactValue(as);
      const t = redactor.redactString(v);
      const e = (ordinary[cat] ??= { total: 0, changed: 0, examples: [] });
      e.total++;
      if (r.redactions > 0 || t.redactions > 0) {
        e.changed++;
        if (e.examples.length < 3) e.examples.push(`${v.slice(0, 100)} → ${t.value.slice(0, 100)}`);
      }
    };
    for (const seed of [1, 2]) {
      for (const [cat, values] of Object.entries(ordinaryValues(seed))) for (const v of values) add(cat, v);
    }
    for (const v of ordinaryCorpus()) add('hand_written', v);

    const detect: Record<string, { total: number; caught: number; missed: string[] }> = {};
    const check = (name: string, secret: string, value: unknown) => {
      const e = (detect[name] ??= { total: 0, caught: 0, missed: [] });
      e.total++;
      const asValue = redactor.redactValue(typeof value === 'string' ? { note: value } : value).value;
      const asText = typeof value === 'string' ? redactor.redactString(value).value : '';
      if (!survives(asValue, secret) && !survives(asText, secret)) e.caught++;
      else if (e.missed.length < 2) e.missed.push(JSON.stringify(value).slice(0, 120));
    };
    for (let seed = 100; seed < 130; seed++)
      for (const s of secretCorpus(seed)) check(s.name, s.secret, s.text);
    for (let seed = 200; seed < 205; seed++)
      for (const s of extraSecrets(seed)) check(s.name, s.secret, s.value);
    const ms = performance.now() - t0;

    const oTotal = Object.values(ordinary).reduce((a, e) => a + e.total, 0);
    const oChanged = Object.values(ordinary).reduce((a, e) => a + e.changed, 0);
    const sTotal = Object.values(detect).reduce((a, e) => a + e.total, 0);
    const sCaught = Object.values(detect).reduce((a, e) => a + e.caught, 0);
    const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(2)}%`;
    console.log(
      JSON.stringify(
        {
          ordinary_values: oTotal,
          ordinary_changed: oChanged,
          false_positive_rate: pct(oChanged, oTotal),
          by_category: Object.fromEntries(
            Object.entries(ordinary).map(([k, e]) => [k, `${e.changed}/${e.total}`]),
          ),
          false_positive_examples: Object.fromEntries(
            Object.entries(ordinary)
              .filter(([, e]) => e.examples.length > 0)
              .map(([k, e]) => [k, e.examples]),
          ),
          secrets: sTotal,
          caught: sCaught,
          detection_rate: pct(sCaught, sTotal),
          missed: Object.fromEntries(
            Object.entries(detect)
              .filter(([, e]) => e.caught < e.total)
              .map(([k, e]) => [k, { caught: `${e.caught}/${e.total}`, examples: e.missed }]),
          ),
          ms: Math.round(ms),
        },
        null,
        2,
      ),
    );
    assert.ok(oTotal >= 3000, `only ${oTotal} ordinary values`);
    assert.ok(oChanged / oTotal <= 0.005, `false-positive rate ${pct(oChanged, oTotal)}`);
    assert.ok(sCaught / sTotal >= 0.99, `detection rate ${pct(sCaught, sTotal)}`);
    // Every format of the corpus is caught in every seed.
    for (const [name, e] of Object.entries(detect))
      assert.ok(e.caught / e.total >= 0.95, `${name}: ${e.caught}/${e.total}`);
  });
});
