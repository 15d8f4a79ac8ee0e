import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin, Producer } from 'kafkajs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createClickHouse, type ClickHouse } from '@mcp-audit/clickhouse';
import {
  createTestTopics,
  env,
  ingesterEnv,
  makeEvent,
  need,
  produceEvents,
  rng,
  startService,
  suffix,
  analyst,
  kafka,
  waitFor,
  waitForStored,
  type ServiceProcess,
} from '../lib/index.js';
import {
  createAlertTopics,
  makeAlert,
  notifierEnv,
  produceAlerts,
  startReceivers,
  writeRoutes,
  v7,
  ROUTING_KEY,
  WEBHOOK_SECRET,
  type Receivers,
} from '../lib/receivers/index.js';
import {
  launchBrowser,
  screenshot,
  startApi,
  step,
  watchPage,
  writeApiKeys,
  type ApiProcess,
} from '../lib/browser.js';

/**
 * The console in real headless Chromium against the real api, ingester, notifier and local
 * receivers: log in, search events put into the pipeline by this test, open the alert from the link
 * the notifier sent to PagerDuty, acknowledge and resolve it there, and see PagerDuty receive
 * `acknowledge` then `resolve`. Every page is also saved under .local/screenshots at 1280×800 and
 * at 420 px.
 */

let admin: Admin;
let producer: Producer;
let ch: ClickHouse;

const tag = `console-${suffix()}`;
const sourceId = `gw-${tag}`;
const clientPrefix = `cl-${tag}`;
// Attacker-controlled strings, as a hostile MCP server or client would send them.
const HOSTILE_TOOL = `<img src=x onerror="window.__xss=1">"'\\ \u202e tool`;
const HOSTILE_ERROR = `<script>window.__xss=2</script> & </td></tr> failed`;

let browser: Browser;
let rx: Receivers;
let ingester: ServiceProcess;
let notifier: ServiceProcess;
let api: ApiProcess;
let base: string;
let keys: Record<string, string>;
let writer: ClickHouse;
const events: Array<Record<string, unknown>> = [];
let alertMsg: ReturnType<typeof makeAlert>;

before(async () => {
  // NOTE: own clients rather than useStackClients(): top-level hooks from two modules did not run in
  // registration order under Node 20's runner here, so this hook could see them unset.
  const kc = kafka();
  admin = kc.admin();
  await admin.connect();
  producer = kc.producer({ idempotent: true, allowAutoTopicCreation: false });
  await producer.connect();
  ch = analyst();
  const evTopics = await createTestTopics(admin, tag, 3);
  const alertTopics = await createAlertTopics(admin, tag);
  ingester = startService('ingester', ingesterEnv(evTopics, `e2e-console-${suffix()}`), tag);

  rx = await startReceivers({ routingKey: ROUTING_KEY, webhookSecret: WEBHOOK_SECRET });
  const routes = writeRoutes({ base: rx.base, destinations: ['slack', 'pagerduty'] });
  const k = writeApiKeys([
    { id: `analyst-${tag}`, scopes: ['analyst'] },
    { id: `admin-${tag}`, scopes: ['admin'] },
    { id: `compliance-${tag}`, scopes: ['compliance'] },
  ]);
  keys = k.keys;
  // The compliance routes (legal holds) are on when the ledger's public keys directory is given.
  const ledgerKeys = mkdtempSync(join(tmpdir(), 'e2e-ledger-keys-'));
  // The api first: it listens on port 0, and the notifier's console links need the port it got.
  ({ svc: api, base } = await startApi({
    keysFile: k.file,
    alertsTopic: alertTopics.alerts,
    tag,
    extra: { MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR: ledgerKeys },
  }));
  notifier = startService(
    'notifier',
    notifierEnv(rx, alertTopics, `e2e-console-${suffix()}`, routes, { MCP_AUDIT_CONSOLE_URL: base }),
    tag,
  );

  // 150 events of three clients (more than one page at limit=50), one of them hostile.
  const r = rng(11);
  // UUIDv7 ids, as the SDK and the gateway mint them (the api bounds an id lookup by its time).
  for (let i = 0; i < 150; i++)
    events.push({
      ...makeEvent(r, i, { sourceId, clients: 3, clientPrefix, spreadMs: 1_800_000 }),
      event_id: v7(),
    });
  events[0]!.tool = { name: HOSTILE_TOOL, definition_hash: 'a'.repeat(64) };
  events[0]!.outcome = 'error';
  events[0]!.error = { code: 'TOOL_ERROR', message: HOSTILE_ERROR };
  events[0]!.rpc_error_code = -32603;
  events[0]!.tool_is_error = true;
  await produceEvents(producer, evTopics.events, events);
  await waitForStored(ch, sourceId, events.length, 120_000);

  // The alert as the detector writes it: a row in mcp_audit.alerts, its `open` transition, and the
  // message on the alerts topic (which the notifier turns into Slack and PagerDuty calls).
  const client = (events[0]!.client as { id: string }).id;
  alertMsg = makeAlert(0, tag, {
    client_id: client,
    title: `Unusual call volume for ${client}`,
    summary: `${client} made 412 tool calls in an hour; it usually makes 10 to 40.`,
    sample_event_ids: events.slice(0, 3).map((e) => e.event_id as string),
  });
  writer = createClickHouse({
    url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    username: need(env, 'MCP_AUDIT_CLICKHOUSE_WRITER_USER'),
    password: need(env, 'MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD'),
    database: 'mcp_audit',
    insertTables: ['alerts', 'alert_transitions'],
  });
  const created = Date.parse(alertMsg.created_at);
  const chTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
  await writer.insert('alerts', [
    {
      alert_id: alertMsg.alert_id,
      dedup_key: alertMsg.dedup_key,
      detector: alertMsg.detector,
      client_id: alertMsg.client_id,
      title: alertMsg.title,
      summary: alertMsg.summary,
      severity: alertMsg.severity,
      window_start_ms: Date.parse(alertMsg.window.start),
      window_end_ms: Date.parse(alertMsg.window.end),
      observed: alertMsg.observed,
      expected_low: alertMsg.expected.low,
      expected_high: alertMsg.expected.high,
      score: alertMsg.score,
      baseline_version: alertMsg.baseline_version,
      contributor_tools: JSON.stringify(alertMsg.contributors.tools),
      contributor_addresses: JSON.stringify(alertMsg.contributors.addresses),
      contributor_sessions: JSON.stringify(alertMsg.contributors.sessions),
      sample_event_ids: alertMsg.sample_event_ids,
      created_at: chTime(created),
      created_at_ms: created,
      written_at: chTime(Date.now()),
      origin: `e2e-${tag}`,
      message: JSON.stringify(alertMsg),
    },
  ]);
  await writer.insert('alert_transitions', [
    {
      transition_id: randomUUID(),
      alert_id: alertMsg.alert_id,
      dedup_key: alertMsg.dedup_key,
      detector: alertMsg.detector,
      client_id: alertMsg.client_id,
      severity: alertMsg.severity,
      from_status: '',
      to_status: 'open',
      changed_at: chTime(created),
      changed_at_ms: created,
      actor: 'detector',
      note: 'opened',
      action: 'open',
      written_at: chTime(Date.now()),
    },
  ]);
  await produceAlerts(producer, alertTopics.alerts, [alertMsg]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await api?.stop();
  await notifier?.stop();
  await ingester?.stop();
  await rx?.close();
  await writer?.close?.();
  await producer?.disconnect();
  await admin?.disconnect();
  await ch?.close?.();
});

async function newPage(
  width = 1280,
  height = 800,
): Promise<{ ctx: BrowserContext; page: Page; seen: ReturnType<typeof watchPage> }> {
  const ctx = await browser.newContext({ viewport: { width, height } });
  const page = await ctx.newPage();
  return { ctx, page, seen: watchPage(page) };
}

async function login(page: Page, key: string): Promise<void> {
  await page.locator('#login-key').fill(key);
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname !== '/login');
}

/**
 * Waits until nothing on the page is loading. A query that hit the api reader's execution-time limit
 * (this shared 2-core machine runs other suites at the same time) shows the limit notice, which is
 * itself part of the console; its "Try again" button is pressed a few times, as an analyst would.
 */
async function settled(page: Page): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    // NOTE: no waitForFunction: its predicate is evaluated as a string, which the console's CSP refuses.
    await waitFor(async () => (await page.locator('[aria-busy="true"], .loading').count()) === 0, {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: 'the page to finish loading',
    });
    const limited = page.locator('.notice.limit button');
    if ((await limited.count()) === 0 || attempt >= 4) return;
    await new Promise((r) => setTimeout(r, 1_000 * (attempt + 1)));
    await limited.first().click();
  }
}

const pdActions = () => rx.pagerduty.accepted.map((r) => String(r.body.event_action));

test('the notifier link opens the alert after login; acknowledge and resolve reach PagerDuty in order', async () => {
  const link = await waitFor(
    () => {
      const trigger = rx.pagerduty.accepted.find((r) => r.body.event_action === 'trigger');
      const href = (trigger?.body.links as Array<{ href: string }> | undefined)?.[0]?.href;
      return href;
    },
    { timeoutMs: 60_000, what: 'the PagerDuty trigger with its console link' },
  );
  assert.equal(link, `${base}/alerts/${alertMsg.alert_id}`);
  const { ctx, page, seen } = await newPage();
  try {
    await step(page, 'alert-login', async () => {
      await page.goto(link);
      await page.waitForURL(/\/login\?next=/);
      await login(page, keys[`analyst-${tag}`]!);
      assert.equal(
        new URL(page.url()).pathname,
        `/alerts/${alertMsg.alert_id}`,
        'back on the page the link named',
      );
      await settled(page);
      assert.equal(await page.locator('h1').textContent(), alertMsg.title);
      await page.locator('strong.big', { hasText: '412' }).waitFor();
      // Sample events resolved to full events: the hostile one shows as text.
      await page.getByText(HOSTILE_ERROR).first().waitFor();
      // The analyst key has no admin scope: no access-log entry.
      assert.equal(await page.getByRole('link', { name: 'Access log' }).count(), 0);
    });

    await step(page, 'alert-dialog-keyboard', async () => {
      // Keyboard only: focus the button, Enter opens the dialog, Escape closes it, focus returns.
      await page.locator('#alert-assign').focus();
      await page.keyboard.press('Enter');
      await page.locator('dialog[open]').waitFor();
      await page.keyboard.press('Escape');
      await page.locator('dialog').waitFor({ state: 'detached' });
      assert.equal(await page.locator(':focus').getAttribute('id'), 'alert-assign');
    });

    await step(page, 'alert-acknowledge', async () => {
      await page.locator('#alert-acknowledge').click();
      await page.locator('#triage-note').fill('looking into it');
      await page.locator('dialog').getByRole('button', { name: 'Acknowledge' }).click();
      await page.locator('dialog').waitFor({ state: 'detached', timeout: 20_000 });
      await settled(page);
      await page.locator('.alert-head .badge.status-acknowledged').waitFor({ timeout: 20_000 });
      await waitFor(() => pdActions().includes('acknowledge'), {
        timeoutMs: 60_000,
        what: 'PagerDuty acknowledge',
      });
    });

    await step(page, 'alert-resolve', async () => {
      await page.locator('#alert-resolve').click();
      await page.locator('#triage-reason').selectOption('false_positive');
      await page.locator('#triage-note').fill('load test by the platform team');
      await page.locator('dialog').getByRole('button', { name: 'Resolve' }).click();
      await page.locator('dialog').waitFor({ state: 'detached', timeout: 20_000 });
      await settled(page);
      await page.locator('.alert-head .badge.status-resolved').waitFor({ timeout: 20_000 });
      await page.getByText('load test by the platform team').waitFor();
      await waitFor(() => pdActions().includes('resolve'), { timeoutMs: 60_000, what: 'PagerDuty resolve' });
      assert.deepEqual(pdActions(), ['trigger', 'acknowledge', 'resolve']);
      assert.deepEqual(rx.pagerduty.violations, []);
      await screenshot(page, 'alert', true);
    });
    assert.deepEqual(seen.csp, [], 'no Content-Security-Policy refusal');
    assert.deepEqual(seen.errors, []);
  } finally {
    await ctx.close();
  }
});

test('event search: filters live in the URL, facets add filters, Back works, next page, hostile values stay text', async () => {
  const { ctx, page, seen } = await newPage();
  try {
    await page.goto(`${base}/events`);
    await page.waitForURL(/\/login/);
    await login(page, keys[`analyst-${tag}`]!);
    const from = new Date(Date.now() - 3 * 3_600_000).toISOString();

    await step(page, 'search-filter', async () => {
      await page.locator('#filter-field').selectOption('source');
      await page.locator('#filter-value').fill(sourceId);
      await page.keyboard.press('Enter');
      await page.waitForURL((u) => u.searchParams.get('source') === sourceId);
      await settled(page);
      const count = await page.locator('#results tbody tr').count();
      assert.equal(count, 100, 'one full page of the default limit');
    });

    await step(page, 'search-facet', async () => {
      const facet = page.locator('.facet').filter({ hasText: 'Clients' }).locator('a').first();
      const value = (await facet.locator('.facet-value').textContent())!;
      await facet.click();
      await page.waitForURL((u) => u.searchParams.getAll('client').includes(value));
      await settled(page);
      const clients = await page.locator('#results tbody tr td:nth-child(5) a').allTextContents();
      assert.ok(clients.length > 0 && clients.every((c) => c === value), 'only the chosen client');
      const filtered = page.url();
      await page.goBack();
      await page.waitForURL((u) => u.searchParams.getAll('client').length === 0);
      await settled(page);
      assert.equal(await page.locator('#results tbody tr').count(), 100);
      await page.goForward();
      await page.waitForURL(filtered);
    });

    await step(page, 'search-link-and-pages', async () => {
      const url = `${base}/events?source=${encodeURIComponent(sourceId)}&from=${encodeURIComponent(from)}&limit=50`;
      await page.goto(url);
      await settled(page);
      const first = await page.locator('#results tbody tr').allTextContents();
      assert.equal(first.length, 50);
      // A copied link opens the same view in another tab.
      const other = await ctx.newPage();
      await other.goto(url);
      await settled(other);
      assert.deepEqual(await other.locator('#results tbody tr').allTextContents(), first);
      await other.close();
      await page.locator('#page-next').click();
      await page.waitForURL((u) => u.searchParams.has('cursor'));
      await settled(page);
      const second = await page.locator('#results tbody tr').allTextContents();
      assert.equal(second.length, 50);
      assert.equal(second.filter((r) => first.includes(r)).length, 0, 'the next page shares no row');
      await page.goBack();
      await settled(page);
      assert.deepEqual(await page.locator('#results tbody tr').allTextContents(), first);
      const ndjson = await page.locator('#download-ndjson').getAttribute('href');
      assert.ok(ndjson?.startsWith('/api/v1/events/export?') && ndjson.includes('format=ndjson'));
      const res = await page.request.get(`${base}${ndjson}`);
      assert.equal(res.status(), 200);
      assert.equal((await res.text()).trim().split('\n').length, events.length);
    });

    await step(page, 'search-hostile', async () => {
      await page.goto(
        `${base}/events?source=${encodeURIComponent(sourceId)}&outcome=error&from=${encodeURIComponent(from)}`,
      );
      await settled(page);
      await page.getByText(HOSTILE_ERROR).first().waitFor();
      assert.equal(await page.locator('main img, main script').count(), 0, 'no markup from data');
      assert.equal(await page.evaluate(() => (globalThis as Record<string, unknown>).__xss), undefined);
      // Event detail, then its session and client.
      await page.locator('#results tbody tr').filter({ hasText: HOSTILE_ERROR }).locator('a').first().click();
      await page.waitForURL(/\/events\/[0-9a-f-]{36}$/);
      await settled(page);
      await page.locator('pre.json').first().waitFor();
      await screenshot(page, 'event', true);
      await page.locator('.fields a[href^="/sessions/"]').first().click();
      await page.waitForURL(/\/sessions\//);
      await settled(page);
      await page.getByRole('heading', { name: 'Identities' }).waitFor();
      await page.locator('a[href^="/clients/"]').first().click();
      await page.waitForURL(/\/clients\//);
      await settled(page);
      await page.locator('#chart-activity canvas').waitFor();
    });

    await step(page, 'session-expired', async () => {
      // The session ends (cookie gone): the next request answers 401, the console goes to the login
      // page and, after logging in, back to where the analyst was.
      await ctx.clearCookies();
      await page.getByRole('link', { name: 'Alerts', exact: true }).click();
      await page.waitForURL(/\/login\?next=%2Falerts/);
      await login(page, keys[`analyst-${tag}`]!);
      assert.equal(new URL(page.url()).pathname, '/alerts');
    });
    assert.deepEqual(seen.csp, [], 'no Content-Security-Policy refusal');
    assert.deepEqual(seen.errors, []);
  } finally {
    await ctx.close();
  }
});

test('a failed login says so; the admin sees the access log; every page at 1280×800 and 420 px', async () => {
  const client = (events[0]!.client as { id: string }).id;
  const session = (events[0]!.client as { session_id: string }).session_id;
  const pages: Array<[string, string]> = [
    ['overview', '/'],
    ['events', `/events?source=${encodeURIComponent(sourceId)}`],
    ['event', `/events/${events[0]!.event_id as string}`],
    ['session', `/sessions/${encodeURIComponent(session)}`],
    ['client', `/clients/${encodeURIComponent(client)}`],
    ['alerts', `/alerts?client=${encodeURIComponent(client)}`],
    ['alert', `/alerts/${alertMsg.alert_id}`],
    ['access-log', '/access-log'],
    ['holds', '/holds'],
  ];
  for (const [width, height, sfx] of [
    [1280, 800, ''],
    [420, 900, '-narrow'],
  ] as const) {
    const { ctx, page, seen } = await newPage(width, height);
    try {
      await page.goto(`${base}/login`);
      await step(page, `login-refused${sfx}`, async () => {
        await page.locator('#login-key').fill('mcpa_not-a-key-of-ours-0123456789');
        await page.keyboard.press('Enter');
        await page.getByText('That key was not accepted.').waitFor();
        await screenshot(page, `login${sfx}`);
      });
      await login(page, keys[`admin-${tag}`]!);
      // Every page is saved even when one fails to load, so the set of screenshots is complete;
      // the failures are asserted after the loop.
      const broken: string[] = [];
      for (const [name, path] of pages)
        await step(page, `${name}${sfx}`, async () => {
          await page.goto(`${base}${path}`);
          await settled(page);
          await screenshot(page, `${name}${sfx}`);
          const notice = page.locator('.notice.error');
          if ((await notice.count()) > 0) broken.push(`${name}: ${await notice.first().innerText()}`);
        });
      assert.deepEqual(broken, [], 'every page loads without an error notice');
      await step(page, `overview-range${sfx}`, async () => {
        // The events-per-hour axis spans the selected range (not the hours that happen to have
        // events), in hourly bins; the chart's label says which range and how many hours.
        const HOUR = 3_600_000;
        const to = Math.floor(Date.now() / HOUR) * HOUR + HOUR;
        const from = to - 30 * HOUR;
        const iso = (ms: number) => new Date(ms).toISOString();
        await page.goto(`${base}/?from=${encodeURIComponent(iso(from))}&to=${encodeURIComponent(iso(to))}`);
        await settled(page);
        await page.locator('#chart-rate canvas').waitFor();
        const label = (await page.locator('#chart-rate').getAttribute('aria-label')) ?? '';
        const dayHour = (ms: number) => iso(ms).slice(0, 16).replace('T', ' ');
        assert.ok(
          label.startsWith(`Events per hour from ${dayHour(from)} to ${dayHour(to)} UTC: 30 hours, `),
          label,
        );
        await screenshot(page, `overview-range${sfx}`, true);
      });
      await step(page, `access-log-rows${sfx}`, async () => {
        await page.goto(`${base}/access-log`);
        await settled(page);
        assert.ok((await page.locator('#results tbody tr').count()) > 0, 'the admin sees requests');
        await page.getByRole('link', { name: 'Access log' }).waitFor();
      });
      assert.deepEqual(seen.csp, [], 'no Content-Security-Policy refusal');
      assert.deepEqual(seen.errors, []);
    } finally {
      await ctx.close();
    }
  }
});

test('legal holds: a compliance key places a hold and releases it with a reason; an analyst has no Holds page', async () => {
  const caseId = `IR-${tag}`;
  const { ctx, page, seen } = await newPage();
  try {
    await page.goto(`${base}/holds`);
    await page.waitForURL(/\/login/);
    await login(page, keys[`compliance-${tag}`]!);
    assert.equal(new URL(page.url()).pathname, '/holds');
    await settled(page);
    await page.getByRole('link', { name: 'Legal holds' }).waitFor();

    await step(page, 'holds-create', async () => {
      // Keyboard: focus the button, Enter opens the form.
      await page.locator('#hold-create').focus();
      await page.keyboard.press('Enter');
      await page.locator('dialog[open]').waitFor();
      await page.locator('#hold-case').fill(caseId);
      await page.locator('#hold-reason').fill('litigation: preserve <b>everything</b> & more');
      await page.locator('#hold-from').fill('2026-01-05T00:00');
      await page.locator('#hold-to').fill('2026-01-07T12:00');
      await page.locator('#hold-clients').fill('client-a, client-b');
      await page.locator('dialog').getByRole('button', { name: 'Place hold' }).click();
      await page.locator('dialog').waitFor({ state: 'detached', timeout: 20_000 });
      await settled(page);
      const row = page.locator('section', { hasText: 'Active (' }).locator('tbody tr', { hasText: caseId });
      await row.waitFor();
      const text = await row.innerText();
      assert.match(text, /litigation: preserve <b>everything<\/b> & more/, 'the reason shows as text');
      assert.match(text, /2026-01-05 00:00:00/);
      assert.match(text, /2026-01-07 12:00:00/);
      assert.match(text, /client-a, client-b/);
      assert.match(text, new RegExp(`compliance-${tag}`), 'who placed it');
      await screenshot(page, 'holds-active', true);
      await page.setViewportSize({ width: 420, height: 900 });
      await screenshot(page, 'holds-active-narrow', true);
      await page.setViewportSize({ width: 1280, height: 800 });
    });

    // What the page shows is what the API holds: placed by this key, active, for those clients.
    const listed = async () =>
      (
        (await (await page.request.get(`${base}/api/v1/legal-holds?all=true`)).json()) as {
          items: Array<{
            case_id: string;
            active: boolean;
            clients: string[];
            created_by: string;
            release_note?: string;
          }>;
        }
      ).items.find((x) => x.case_id === caseId);
    const placed = await listed();
    assert.deepEqual(placed && { active: placed.active, clients: placed.clients, by: placed.created_by }, {
      active: true,
      clients: ['client-a', 'client-b'],
      by: `compliance-${tag}`,
    });

    await step(page, 'holds-release', async () => {
      const row = page.locator('section', { hasText: 'Active (' }).locator('tbody tr', { hasText: caseId });
      await row.getByRole('button', { name: /Release/ }).click();
      await page.locator('dialog[open]').waitFor();
      // A release needs a reason: an empty note is refused in the dialog.
      await page.locator('dialog').getByRole('button', { name: 'Release hold' }).click();
      assert.equal(await page.locator('dialog[open]').count(), 1, 'still open without a reason');
      await page.locator('#hold-release-note').fill('case closed by counsel');
      await page.locator('dialog').getByRole('button', { name: 'Release hold' }).click();
      await page.locator('dialog').waitFor({ state: 'detached', timeout: 20_000 });
      await settled(page);
      const released = page
        .locator('section', { hasText: 'Released (' })
        .locator('tbody tr', { hasText: caseId });
      await released.waitFor();
      assert.match(await released.innerText(), /case closed by counsel/);
      assert.equal(
        await page
          .locator('section', { hasText: 'Active (' })
          .locator('tbody tr', { hasText: caseId })
          .count(),
        0,
      );
      await screenshot(page, 'holds-released', true);
    });
    const after = await listed();
    assert.equal(after?.active, false);
    assert.equal(after?.release_note, 'case closed by counsel');
    assert.deepEqual(seen.csp, [], 'no Content-Security-Policy refusal');
    assert.deepEqual(seen.errors, []);
  } finally {
    await ctx.close();
  }
  // The analyst: no Holds link, and the page says which scope it needs.
  const a = await newPage();
  try {
    await a.page.goto(`${base}/holds`);
    await a.page.waitForURL(/\/login/);
    await login(a.page, keys[`analyst-${tag}`]!);
    assert.equal(await a.page.getByRole('link', { name: 'Legal holds' }).count(), 0);
    await a.page.getByText('This page needs the compliance scope.').waitFor();
  } finally {
    await a.ctx.close();
  }
});
