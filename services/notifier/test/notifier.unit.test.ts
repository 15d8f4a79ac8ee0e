import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, createRegistry } from '@mcp-audit/service-kit';
import type { Alert, AlertMessage } from '@mcp-audit/schema';
import { parseRoutes, readSecret, routeAlert, inQuietHours } from '../src/alerts.router.js';
import { allowList, refuseAddress, refuseUrl } from '../src/address.policy.js';
import { backoffMs, nextDelayMs, parseRetryAfter, TokenBucket } from '../src/backoff.js';
import { buildSlackAlert, buildSlackDigest, SLACK_LIMITS } from '../src/slack.payload.js';
import { buildPagerDutyEvent, PD_LIMITS, pdDedupKey } from '../src/pagerduty.payload.js';
import { buildWebhookBody, signWebhook, verifyWebhook } from '../src/webhook.payload.js';
import { DeliveryEngine, type DeliveryRow } from '../src/delivery.engine.js';
import type { DeliveryJob, Destination, SendOutcome } from '../src/destinations.js';
import { createNotifierMetrics } from '../src/metrics.js';
import { sampleAlert } from './fixtures.js';

const log = createLogger('test', { level: 'silent' });
let n = 0;
const alert = (over: Partial<Alert> = {}): Alert =>
  sampleAlert(++n, { client_labels: { env: 'prod' }, ...over });

const routesJson = {
  destinations: [
    { id: 'slack', kind: 'slack', url: { env: 'SLACK_URL' }, min_severity: 'medium' },
    {
      id: 'pd',
      kind: 'pagerduty',
      routing_key: { env: 'PD_KEY' },
      quiet_hours: { start: '22:00', end: '07:00', min_severity: 'critical' },
    },
    { id: 'hook', kind: 'webhook', url: { file: '/run/secrets/hook-url' }, secret: { env: 'HOOK_SECRET' } },
  ],
  rules: [
    {
      name: 'auth to pager',
      match: { detectors: ['auth_failures'], min_severity: 'high' },
      destinations: ['pd', 'slack'],
      final: true,
    },
    { name: 'prod', match: { client_labels: { env: 'prod' } }, destinations: ['slack', 'hook'] },
  ],
};

test('routing: rule matching by detector, severity and labels; min severity and quiet hours per destination', () => {
  const routes = parseRoutes(routesJson);
  const day = new Date('2024-01-01T12:00:00Z');
  const night = new Date('2024-01-01T23:30:00Z');
  assert.deepEqual(routeAlert(routes, alert({ detector: 'auth_failures' }), day), [
    { destinationId: 'pd' },
    { destinationId: 'slack' },
  ]);
  assert.deepEqual(routeAlert(routes, alert({ detector: 'auth_failures' }), night), [
    { destinationId: 'pd', suppressed: 'quiet_hours' },
    { destinationId: 'slack' },
  ]);
  assert.deepEqual(routeAlert(routes, alert({ detector: 'auth_failures', severity: 'critical' }), night)[0], {
    destinationId: 'pd',
  });
  // Quiet hours hold back new alerts, never the resolve of one that was paged: it follows the trigger.
  const resolved = {
    schema_version: 1,
    type: 'state_change',
    transition_id: '0190a000-0000-7000-8000-00000000aaaa',
    alert_id: '0190a000-0000-7000-8000-000000000001',
    dedup_key: 'auth_failures:c-1',
    detector: 'auth_failures',
    client_id: 'c-1',
    title: 'Burst',
    severity: 'high',
    from: 'open',
    status: 'resolved',
    changed_at: '2024-01-01T23:30:00.000Z',
  } as const;
  assert.deepEqual(routeAlert(routes, resolved, night), [
    { destinationId: 'pd' },
    { destinationId: 'slack' },
  ]);
  assert.deepEqual(routeAlert(routes, alert({ severity: 'low' }), day), [
    { destinationId: 'slack', suppressed: 'min_severity' },
    { destinationId: 'hook' },
  ]);
  assert.deepEqual(routeAlert(routes, alert({ client_labels: { env: 'dev' } }), day), []);
  assert.equal(
    inQuietHours({ start: '22:00', end: '07:00', tz: 'UTC' }, new Date('2024-01-01T06:59:00Z')),
    true,
  );
  assert.equal(
    inQuietHours({ start: '22:00', end: '07:00', tz: 'UTC' }, new Date('2024-01-01T07:00:00Z')),
    false,
  );
  assert.equal(
    inQuietHours({ start: '09:00', end: '17:00', tz: 'Asia/Tokyo' }, new Date('2024-01-01T01:00:00Z')),
    true,
  );
});

test('routing file: secrets only by reference, unknown destinations refused, secret errors name the reference not the value', () => {
  assert.throws(
    () => parseRoutes({ ...routesJson, rules: [{ name: 'x', destinations: ['nope'] }] }),
    /unknown destination nope/,
  );
  const inline = {
    ...routesJson,
    destinations: [{ id: 's', kind: 'slack', url: 'https://hooks.slack.com/services/T/B/X' }],
  };
  assert.throws(() => parseRoutes(inline), /invalid routing file/);
  const io = { env: { SLACK_URL: ' https://hooks.slack.com/x ' }, readFile: () => 'from-file\n' };
  assert.equal(readSecret({ env: 'SLACK_URL' }, io, 'u'), 'https://hooks.slack.com/x');
  assert.equal(readSecret({ file: '/f' }, io, 'u'), 'from-file');
  assert.throws(
    () => readSecret({ env: 'MISSING' }, io, 'dest x url'),
    /dest x url: environment variable MISSING is not set/,
  );
});

test('address policy: private, loopback, link-local and metadata refused unless allowlisted; https only unless allowed', () => {
  const none = allowList([]);
  for (const ip of [
    '10.1.2.3',
    '127.0.0.1',
    '169.254.169.254',
    '172.20.0.1',
    '192.168.1.1',
    '100.64.0.1',
    '::1',
    'fd00:ec2::254',
    'fe80::1',
    '::ffff:10.0.0.1',
    '0.0.0.0',
  ])
    assert.ok(refuseAddress(ip, none), `${ip} refused`);
  for (const ip of ['8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8'])
    assert.equal(refuseAddress(ip, none), undefined, `${ip} allowed`);
  assert.equal(refuseAddress('127.0.0.1', allowList(['127.0.0.1/32'])), undefined);
  assert.ok(refuseAddress('127.0.0.2', allowList(['127.0.0.1/32'])));
  assert.ok(refuseUrl(new URL('http://example.com/x'), { allowHttp: false }));
  assert.equal(refuseUrl(new URL('http://example.com/x'), { allowHttp: true }), undefined);
  assert.ok(refuseUrl(new URL('https://user:pw@example.com/x'), { allowHttp: false }));
});

test('backoff: exponential with full jitter, capped, never earlier than Retry-After; token bucket', () => {
  assert.equal(
    backoffMs(1, 100, 10_000, () => 1),
    100,
  );
  assert.equal(
    backoffMs(4, 100, 10_000, () => 1),
    800,
  );
  assert.equal(
    backoffMs(30, 100, 10_000, () => 1),
    10_000,
  );
  assert.ok(backoffMs(5, 100, 10_000, () => 0.5) <= 800);
  assert.equal(
    nextDelayMs(1, { baseMs: 100, maxMs: 1000, retryAfterMs: 5_000 }, () => 1),
    5_000,
  );
  assert.equal(parseRetryAfter('3'), 3_000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
  assert.equal(parseRetryAfter('garbage'), undefined);
  assert.equal(parseRetryAfter('999999'), 3_600_000);
  let t = 0;
  const b = new TokenBucket(1, 3, () => t);
  b.take();
  b.take();
  b.take();
  assert.equal(b.available(), 0);
  assert.equal(b.waitMs(), 1000);
  t = 1500;
  assert.equal(b.available(), 1);
});

test('Slack: alert message within Block Kit limits even with oversized content, mrkdwn escaped', () => {
  const big = 'x'.repeat(5000);
  const a = alert({ title: `<!channel> ${'T'.repeat(199)}`.slice(0, 200), summary: big.slice(0, 2000) });
  a.contributors.tools = Array.from({ length: 20 }, (_, i) => ({
    value: `${'t'.repeat(500)}${i}`,
    count: i,
  }));
  const m = buildSlackAlert(a, 'https://console.example');
  assert.ok(m.blocks.length <= SLACK_LIMITS.blocks);
  const header = m.blocks[0] as { text: { text: string } };
  assert.ok(header.text.text.length <= 150);
  for (const b of m.blocks as Array<{
    type: string;
    text?: { text: string };
    fields?: Array<{ text: string }>;
  }>) {
    if (b.text) assert.ok(b.text.text.length <= 3000);
    if (b.fields) {
      assert.ok(b.fields.length <= 10);
      for (const f of b.fields) assert.ok(f.text.length <= 2000);
    }
  }
  assert.ok(!JSON.stringify(m.blocks.slice(1)).includes('<!channel>'), 'mentions cannot be injected');
});

test('Slack: a digest of 1000 alerts stays within 50 blocks and 3000 characters per section, and names what it folds', () => {
  const alerts = Array.from({ length: 1000 }, () => alert({ title: 'T'.repeat(200) }));
  const { message, folded } = buildSlackDigest(alerts, 'https://c', 1000);
  assert.ok(message.blocks.length <= 50);
  assert.ok(folded > 20 && folded < 1000);
  for (const b of message.blocks as Array<{ text?: { text: string } }>)
    if (b.text) assert.ok(b.text.text.length <= 3000);
  const text = JSON.stringify(message);
  for (const a of alerts.slice(0, folded)) assert.ok(text.includes(`/alerts/${a.alert_id}`));
  assert.ok(!text.includes(`/alerts/${alerts[folded]!.alert_id}`));
});

test('PagerDuty: severity mapping, summary ≤ 1024, dedup key ≤ 255, event ≤ 512 KB, acknowledge/resolve', () => {
  const a = alert({ severity: 'medium', title: 'T'.repeat(200) });
  (a as { client_id: string }).client_id = 'c'.repeat(2000);
  // Oversized evidence (bypassing the schema's caps) is shed to fit.
  (a.contributors as unknown as { tools: unknown[] }).tools = Array.from({ length: 5000 }, (_, i) => ({
    value: 'v'.repeat(200),
    count: i,
  }));
  const e = buildPagerDutyEvent(a, 'KEY', 'https://c') as {
    payload: { summary: string; severity: string; custom_details: Record<string, unknown> };
  };
  assert.equal(e.payload.severity, 'warning');
  assert.ok(e.payload.summary.length <= PD_LIMITS.summary);
  assert.ok(Buffer.byteLength(JSON.stringify(e)) <= PD_LIMITS.eventBytes);
  assert.equal(e.payload.custom_details.truncated, true);
  assert.equal(pdDedupKey('k'.repeat(300)).length <= 255, true);
  assert.equal(pdDedupKey('short'), 'short');
  const sev = (s: Alert['severity']) =>
    (buildPagerDutyEvent(alert({ severity: s }), 'K', 'https://c') as { payload: { severity: string } })
      .payload.severity;
  assert.deepEqual(
    ['critical', 'high', 'medium', 'low', 'info'].map((s) => sev(s as Alert['severity'])),
    ['critical', 'error', 'warning', 'info', 'info'],
  );
  const base = alert();
  const change = (status: 'acknowledged' | 'resolved'): AlertMessage => ({
    schema_version: 1,
    type: 'state_change',
    transition_id: base.alert_id,
    alert_id: base.alert_id,
    dedup_key: base.dedup_key,
    detector: 'volume',
    client_id: 'c',
    title: 't',
    severity: 'high',
    from: 'open',
    status,
    changed_at: base.created_at,
  });
  assert.deepEqual(buildPagerDutyEvent(change('resolved'), 'K', 'https://c'), {
    routing_key: 'K',
    event_action: 'resolve',
    dedup_key: base.dedup_key,
  });
  assert.equal(buildPagerDutyEvent(change('acknowledged'), 'K', 'https://c').event_action, 'acknowledge');
});

test('webhook: versioned body, HMAC over timestamp and body; tampering, wrong secret and stale timestamps fail', () => {
  const body = buildWebhookBody(alert(), 'job-1', 'https://c');
  assert.equal(JSON.parse(body).schema, 'mcp-audit.alert.v1');
  const ts = 1_700_000_000;
  const sig = signWebhook('s3cret', ts, body);
  assert.match(sig, /^v1=[0-9a-f]{64}$/);
  const ok = { secret: 's3cret', timestamp: String(ts), signature: sig, body, nowSeconds: ts + 10 };
  assert.deepEqual(verifyWebhook(ok), { ok: true });
  assert.deepEqual(verifyWebhook({ ...ok, body: body.replace('high', 'info') }), {
    ok: false,
    reason: 'bad_signature',
  });
  assert.deepEqual(verifyWebhook({ ...ok, secret: 'other' }), { ok: false, reason: 'bad_signature' });
  assert.deepEqual(verifyWebhook({ ...ok, nowSeconds: ts + 301 }), { ok: false, reason: 'stale' });
  assert.deepEqual(verifyWebhook({ ...ok, signature: undefined }), { ok: false, reason: 'missing' });
});

function fakeDest(
  id: string,
  outcomes: Array<Partial<SendOutcome>>,
  folds = false,
  rate = { per: 1000, burst: 1000 },
) {
  const sent: string[][] = [];
  const d: Destination = {
    id,
    kind: folds ? 'slack' : 'webhook',
    folds,
    bucket: new TokenBucket(rate.per, rate.burst),
    async send(jobs) {
      const o = outcomes.shift() ?? { ok: true };
      const count = folds ? jobs.length : 1;
      sent.push(jobs.slice(0, count).map((j) => j.jobId));
      return { count, ok: false, retryable: true, httpStatus: o.ok ? 200 : 500, latencyMs: 1, ...o };
    },
  };
  return { d, sent };
}

function engineWith(dests: Destination[], maxAttempts = 5) {
  const rows: DeliveryRow[] = [];
  const dead: string[] = [];
  const engine = new DeliveryEngine(
    { groupId: 'g', topic: 't', maxAttempts, backoffBaseMs: 1, backoffMaxMs: 5, maxPending: 100 },
    {
      destinations: new Map(dests.map((d) => [d.id, d])),
      record: (r) => rows.push(...r),
      deadLetter: async (j) => void dead.push(j.jobId),
      deadLetterUnreadable: async () => undefined,
      log,
      metrics: createNotifierMetrics(createRegistry('t', { defaultMetrics: false })),
    },
  );
  return { engine, rows, dead };
}

const job = (dest: string, a: AlertMessage = alert()): DeliveryJob => ({
  jobId: `${a.type === 'alert' ? a.alert_id : a.transition_id}:${dest}`,
  messageId: a.type === 'alert' ? a.alert_id : a.transition_id,
  destinationId: dest,
  message: a,
  attempts: 0,
});

const until = async (f: () => boolean) => {
  const end = Date.now() + 5_000;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

test('engine: retries in order until delivered, recording each attempt; a later job never overtakes', async () => {
  const { d, sent } = fakeDest('w', [
    { ok: false },
    { ok: false, retryAfterMs: 20 },
    { ok: true },
    { ok: true },
  ]);
  const { engine, rows } = engineWith([d]);
  const jobs = [job('w'), job('w')];
  engine.enqueue(jobs);
  engine.start();
  await until(() => engine.pending === 0);
  await engine.stop();
  assert.deepEqual(sent, [[jobs[0]!.jobId], [jobs[0]!.jobId], [jobs[0]!.jobId], [jobs[1]!.jobId]]);
  assert.deepEqual(
    rows.map((r) => `${r.status}:${r.attempt}`),
    ['failed:1', 'failed:2', 'delivered:3', 'delivered:1'],
  );
});

test('engine: a job that exhausts its budget, or fails permanently, is dead-lettered and the queue moves on', async () => {
  const { d } = fakeDest('w', [
    { ok: false },
    { ok: false },
    { ok: false, retryable: false, httpStatus: 404 },
    { ok: true },
  ]);
  const { engine, rows, dead } = engineWith([d], 2);
  const jobs = [job('w'), job('w'), job('w')];
  engine.enqueue(jobs);
  engine.start();
  await until(() => engine.pending === 0);
  await engine.stop();
  assert.deepEqual(dead, [jobs[0]!.jobId, jobs[1]!.jobId]);
  assert.deepEqual(
    rows.filter((r) => r.final === 1).map((r) => `${r.job_id === jobs[2]!.jobId ? 'j3' : 'jx'}:${r.status}`),
    ['jx:dead_lettered', 'jx:dead_lettered', 'j3:delivered'],
  );
});

test('engine: Slack backlog beyond the tokens in hand is folded into one digest', async () => {
  const { d, sent } = fakeDest('s', [], true, { per: 1, burst: 2 });
  const { engine, rows } = engineWith([d]);
  const jobs = Array.from({ length: 10 }, () => job('s'));
  engine.enqueue(jobs);
  engine.start();
  await until(() => engine.pending === 0);
  await engine.stop();
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.length, 10);
  assert.equal(rows.filter((r) => r.status === 'delivered').length, 10);
});
