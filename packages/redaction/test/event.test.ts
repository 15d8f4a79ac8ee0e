import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createEventRedactor, pinoRedactOptions, pinoRedactPaths } from '../src/index.js';

const redactor = createEventRedactor({ fingerprintKey: 'test-redaction-key-0123456789' });
const GH = `ghp_${'Zy9'.repeat(12)}`;

function event(): Record<string, unknown> {
  return {
    schema_version: 1,
    event_id: '01912d68-783e-7a55-8c2f-3c9d4b6a1e20',
    ts: '2024-06-01T12:34:56.789Z',
    kind: 'tool_call',
    source: { type: 'gateway', id: 'gw-1', version: '1.0.0' },
    client: {
      id: 'client-42',
      user: 'alice@example.com',
      session_id: 'sess-7f3a',
      user_agent: 'claude-code/1.0',
    },
    server: { name: 'github', transport: 'http' },
    method: 'tools/call',
    tool: {
      name: 'create_issue',
      definition_hash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    },
    outcome: 'error',
    auth: { method: 'api_key', result: 'success' },
    error: { code: -32000, message: `GitHub rejected token ${GH}: Bad credentials` },
    duration_ms: 12,
    request_bytes: 100,
    response_bytes: 50,
    args: { repo: 'acme/app', headers: { Authorization: `token ${GH}` }, max_tokens: 100 },
    labels: { team: 'platform', webhook_secret: 'whs-123' },
  };
}

describe('redactEvent', () => {
  it('redacts args, error text and labels and keeps the envelope', () => {
    const input = event();
    const r = redactor.redactEvent(input);
    const e = r.event as ReturnType<typeof event> & {
      args: { headers: { Authorization: string }; max_tokens: number; repo: string };
      error: { message: string; code: number };
      labels: Record<string, string>;
      auth: unknown;
      client: { session_id: string };
    };
    assert.ok(!JSON.stringify(e).includes(GH));
    assert.ok(!r.raw.includes(GH));
    assert.match(
      e.error.message,
      /^GitHub rejected token \[REDACTED:github_token:[0-9a-f]{8}\]: Bad credentials$/,
    );
    assert.equal(e.error.code, -32000);
    assert.match(e.args.headers.Authorization, /^\[REDACTED:authorization:[0-9a-f]{8}\]$/);
    assert.equal(e.args.max_tokens, 100);
    assert.equal(e.args.repo, 'acme/app');
    assert.equal(e.labels.team, 'platform');
    assert.match(e.labels.webhook_secret!, /^\[REDACTED:secret:/);
    // `auth` and `session_id` are envelope fields here, not credentials.
    assert.deepEqual(e.auth, { method: 'api_key', result: 'success' });
    assert.equal(e.client.session_id, 'sess-7f3a');
    assert.deepEqual(r.kinds, ['authorization', 'github_token', 'secret']);
    assert.equal(r.redactions, 3);
    assert.deepEqual(JSON.parse(r.raw), e);
    // The input is not modified.
    assert.deepEqual(input, event());
  });

  it('redacts the raw copy, including fields the schema does not know', () => {
    const raw = JSON.stringify({ ...event(), extra: { password: 'p4ss-w0rd' }, debug: `token=${GH}` });
    const r = redactor.redactEvent(event(), raw);
    assert.ok(!r.raw.includes(GH));
    assert.ok(!r.raw.includes('p4ss-w0rd'));
    const parsed = JSON.parse(r.raw) as { extra: { password: string }; debug: string; event_id: string };
    assert.match(parsed.extra.password, /^\[REDACTED:password:/);
    assert.match(parsed.debug, /^token=\[REDACTED:github_token:/);
    assert.equal(parsed.event_id, '01912d68-783e-7a55-8c2f-3c9d4b6a1e20');
    assert.ok(r.kinds.includes('password'));
  });

  it('redacts a secret placed in an envelope field by a careless source', () => {
    const ev = event();
    (ev.client as Record<string, unknown>).id = GH;
    (ev.auth as Record<string, unknown>).reason = `invalid key ${GH}`;
    const r = redactor.redactEvent(ev);
    assert.ok(!JSON.stringify(r.event).includes(GH));
  });

  it('keeps the raw text byte-identical when there is nothing to redact', () => {
    const clean = { ...event(), error: { code: 1, message: 'timeout' }, args: { q: 'x' }, labels: {} };
    const raw = JSON.stringify(clean, null, 2);
    const r = redactor.redactEvent(clean, raw);
    assert.equal(r.raw, raw);
    assert.equal(r.redactions, 0);
  });

  it('falls back to text redaction for a raw copy that is not JSON', () => {
    const r = redactor.redactEvent(event(), `{"args": {"t": "${GH}"`);
    assert.ok(!r.raw.includes(GH));
  });

  it('is idempotent (the ingester redacts again what the collector redacted)', () => {
    const raw = JSON.stringify({ ...event(), extra: { password: 'p4ss-w0rd' } });
    const once = redactor.redactEvent(event(), raw);
    const twice = redactor.redactEvent(once.event, once.raw);
    assert.deepEqual(twice.event, once.event);
    assert.equal(twice.raw, once.raw);
  });
});

describe('pino', () => {
  it('lists paths for headers and credential fields at two levels', () => {
    for (const p of [
      'req.headers.authorization',
      '*.password',
      '*.token',
      '*.apiKey',
      '*.secret',
      '*.api_key',
    ]) {
      assert.ok(pinoRedactPaths.includes(p), p);
    }
    assert.equal(new Set(pinoRedactPaths).size, pinoRedactPaths.length);
  });

  it('builds options with a fingerprinting censor', () => {
    const opts = pinoRedactOptions(redactor);
    assert.equal(typeof opts.censor, 'function');
    const censor = opts.censor as (v: unknown, path: string[]) => unknown;
    assert.match(String(censor('hunter2', ['db', 'password'])), /^\[REDACTED:password:[0-9a-f]{8}\]$/);
    assert.equal(pinoRedactOptions().censor, '[REDACTED]');
  });

  it('is accepted by pino when pino is installed', async (t) => {
    let pino: ((opts: object, dest: object) => { info: (o: object, m: string) => void }) | undefined;
    try {
      const name = 'pino';
      const mod = (await import(name)) as { pino: typeof pino };
      pino = mod.pino;
    } catch {
      t.skip('pino not resolvable from here');
      return;
    }
    const lines: string[] = [];
    const log = pino!({ redact: pinoRedactOptions(redactor) }, { write: (l: string) => lines.push(l) });
    log.info({ req: { headers: { authorization: `Bearer ${GH}` } }, db: { password: 'x' }, token: GH }, 'hi');
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes(GH));
    assert.ok(!lines[0]!.includes('"password":"x"'));
  });
});
