import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { sql } from '@mcp-audit/clickhouse';
import { eventKeyFor } from '@mcp-audit/schema';
// The corpus of fake secrets with real shapes (the redaction package's unit tests use the same).
import { secretCorpus } from '../fixtures/secret-corpus.js';
import {
  analyst,
  createTestTopics,
  ingesterEnv,
  kafka,
  makeEvent,
  rng,
  startService,
  suffix,
  waitForStored,
} from '../lib/index.js';

test('secrets in args, error text, labels and unknown fields never reach ClickHouse or a log line', async () => {
  const corpus = secretCorpus(20261121);
  assert.ok(corpus.length >= 30, `corpus has ${corpus.length} formats`);
  const k = kafka();
  const admin = k.admin();
  await admin.connect();
  const producer = k.producer({ idempotent: true });
  await producer.connect();
  const ch = analyst();
  const tag = `secrets-${suffix()}`;
  const topics = await createTestTopics(admin, 'secrets', 2);
  const r = rng(5);
  const events = corpus.map((s, i) => {
    const e = makeEvent(r, i, { sourceId: tag, clientPrefix: tag });
    e.args = {
      query: { filters: [{ note: `use ${s.text} for this` }] },
      options: { headers: { 'x-extra': s.text } },
    };
    e.outcome = 'error';
    e.tool_is_error = true;
    e.error = { code: 'UPSTREAM', message: `request failed with credentials ${s.text} (retrying)` };
    // Label values are single-line by contract, so multi-line secrets (PEM blocks) stay out of them.
    e.labels = { env: 'prod', deploy_note: s.text.includes('\n') ? 'multi-line' : s.text.slice(0, 250) };
    // An unknown top-level field: kept in the raw copy, so it must be redacted too.
    e.x_debug = { env: { CONFIG: s.text } };
    return e;
  });
  const ing = startService(
    'ingester',
    ingesterEnv(topics, `e2e-ingester-${suffix()}`, { MCP_AUDIT_LOG_LEVEL: 'debug' }),
    tag,
  );
  try {
    await producer.send({
      topic: topics.events,
      acks: -1,
      messages: events.map((e) => ({
        key: eventKeyFor(String((e.client as { id: string }).id)),
        value: JSON.stringify(e),
      })),
    });
    const c = await waitForStored(ch, tag, events.length);
    assert.equal(c.visible, events.length, 'every event stored (redacted, not rejected)');
    const rows = await ch.query<Record<string, unknown>>(
      sql`SELECT * FROM mcp_audit.events WHERE source_id = ${tag}`,
    );
    const stored = JSON.stringify(rows);
    for (const s of corpus) {
      // Not even a 12-character piece of the secret may survive.
      for (let i = 0; i + 12 <= s.secret.length; i += 4) {
        assert.ok(
          !stored.includes(s.secret.slice(i, i + 12)),
          `${s.name}: part of the secret reached ClickHouse`,
        );
      }
    }
    assert.match(stored, /\[REDACTED:[a-z0-9_]+:[0-9a-f]{8}\]/, 'fingerprint markers are stored instead');
    // Ordinary content around the secrets survives.
    assert.match(stored, /for this/);
    assert.match(stored, /retrying/);
  } finally {
    assert.equal(await ing.stop(), 0);
    await producer.disconnect();
    await admin.disconnect();
    await ch.close();
  }
  const log = readFileSync(ing.logFile, 'utf8');
  assert.ok(log.length > 0, 'the ingester logged at debug level');
  for (const s of corpus) assert.ok(!log.includes(s.secret), `${s.name}: secret in the ingester log`);
});
