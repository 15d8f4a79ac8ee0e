/**
 * Incidents in the console, in real headless Chromium: the detector's own lifecycle groups a password
 * spray, the misuse of a session it opened and an unrelated volume spike into two incidents (stored in
 * a database of the test's own), the api (built in-process on that database, listening on port 0)
 * serves them, and the console lists them, filters them and shows one with its alerts and timeline.
 * Screenshots: .local/screenshots/incidents*.png (1280×800 and 420 px).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { createClickHouse, dbIdent, runMigrations, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { buildApi, clickHouseAccessLog, defaultApiConfig, fileKeyRing } from '@mcp-audit/api';
import { Lifecycle, type Finding } from '@mcp-audit/detector';
import { createLogger } from '@mcp-audit/service-kit';
import { env, need, REPO_ROOT, suffix, waitFor } from '../lib/index.js';
import { launchBrowser, screenshot, step, watchPage, writeApiKeys } from '../lib/browser.js';

const database = `mcp_audit_e2e_incidents_${suffix()}`;
const log = createLogger('incidents-browser-test', { level: 'silent' });
const MIN = 60_000;
const T = Math.floor(Date.now() / MIN) * MIN - 3 * 60 * MIN;
let admin: ClickHouse;
let ch: ClickHouse;
let browser: Browser;

const finding = (
  o: Partial<Finding> & Pick<Finding, 'detector' | 'clientId' | 'dedupKey' | 'title'>,
): Finding => ({
  severity: 'medium',
  summary: `${o.title}.`,
  windowStart: T,
  windowEnd: T + 15 * MIN,
  observed: 13,
  expected: { low: 0, high: 4 },
  score: 3,
  baselineVersion: '',
  contributors: { tools: [], addresses: [], sessions: [] },
  sampleEventIds: [],
  detectedAt: T + 15 * MIN,
  ...o,
});

before(async () => {
  const creds = {
    url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    username: env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER ?? 'mcp_admin',
    password: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'),
  };
  admin = createClickHouse(creds);
  await runMigrations({ client: admin, dir: `${REPO_ROOT}schemas/clickhouse/`, database });
  ch = createClickHouse({
    ...creds,
    database,
    insertTables: ['alerts', 'alert_transitions', 'incidents', 'incident_transitions', 'access_log'],
  });
  // What the live detector writes: the lifecycle with a sink into this database's tables.
  const lifecycle = new Lifecycle({
    origin: 'live',
    log,
    sink: {
      async write(out) {
        if (out.alerts.length) await ch.insert('alerts', out.alerts);
        if (out.transitions.length) await ch.insert('alert_transitions', out.transitions);
        if (out.incidents.length) await ch.insert('incidents', out.incidents);
        if (out.incidentTransitions.length) await ch.insert('incident_transitions', out.incidentTransitions);
      },
    },
  });
  const ip = '2001:db8:8001:8002:fee::a1';
  const sessions = [1, 2, 3].map((i) => ({ value: `s-spray-${i}`, count: 1 }));
  await lifecycle.raise(
    finding({
      detector: 'auth_spray',
      clientId: ip,
      dedupKey: `auth_spray:${ip}:15m`,
      severity: 'high',
      title: `Authentication spraying from ${ip}: 13 clients`,
      contributors: { tools: [], addresses: [{ value: ip, count: 13 }], sessions },
    }),
  );
  for (const [i, s] of sessions.entries())
    await lifecycle.raise(
      finding({
        detector: 'session_misuse',
        clientId: `client-${i + 1}`,
        dedupKey: `session_misuse:${s.value}:15m`,
        title: `Session ${s.value} used from 2 addresses`,
        windowStart: T + 15 * MIN,
        windowEnd: T + 30 * MIN,
        detectedAt: T + 30 * MIN,
        contributors: { tools: [], addresses: [{ value: ip, count: 1 }], sessions: [s] },
      }),
    );
  await lifecycle.resolve(`auth_spray:${ip}:15m`, T + 45 * MIN, 'fewer than 5 clients in the window');
  await lifecycle.raise(
    finding({
      detector: 'volume',
      clientId: 'batch-7',
      dedupKey: 'volume:batch-7:1h',
      severity: 'low',
      title: 'Unusual call volume for batch-7',
      windowStart: T + 60 * MIN,
      windowEnd: T + 120 * MIN,
      detectedAt: T + 80 * MIN,
    }),
  );
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await ch?.close();
  await admin?.command(sql`DROP DATABASE IF EXISTS ${dbIdent(database)}`);
  await admin?.close();
});

test('console: incidents list, filter and detail with alerts and timeline', async () => {
  const { file, keys } = writeApiKeys([{ id: 'analyst-incidents', scopes: ['analyst'] }]);
  const app = await buildApi(defaultApiConfig({ consoleDir: `${REPO_ROOT}services/api/dist/console` }), {
    reader: ch,
    writer: ch,
    producer: { connect: async () => {}, send: async () => {}, disconnect: async () => {} } as never,
    keys: fileKeyRing(file, log),
    accessLog: clickHouseAccessLog(ch),
    log,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const seen = watchPage(page);
  try {
    await step(page, 'incidents-login', async () => {
      await page.goto(`${base}/incidents`);
      await page.waitForURL(/\/login/);
      await page.locator('#login-key').fill(keys['analyst-incidents']!);
      await page.keyboard.press('Enter');
      await page.waitForURL((u) => u.pathname === '/incidents');
    });
    const rows = await step(page, 'incidents-list', async () => {
      await page.locator('a.incident-link').first().waitFor();
      return page.locator('a.incident-link').allTextContents();
    });
    assert.equal(rows.length, 2, `two incidents, got ${rows.join(' | ')}`);
    assert.match(rows[0]!, /Unusual call volume for batch-7/);
    assert.match(rows[1]!, /Authentication spraying .* \(\+3 related\)/);
    await screenshot(page, 'incidents', true);

    await step(page, 'incidents-filter', async () => {
      await page.locator('input[name=severity][value=high]').check();
      await page.locator('#incidents-apply').click();
      await page.waitForURL(/severity=high/);
      // NOTE: no waitForFunction (its predicate is a string the console's CSP refuses): poll the count.
      await waitFor(async () => (await page.locator('a.incident-link').count()) === 1, {
        timeoutMs: 10_000,
        what: 'one high incident',
      });
    });

    await step(page, 'incident-detail', async () => {
      await page.locator('a.incident-link').first().click();
      await page.waitForURL(/\/incidents\/[0-9a-f-]{36}$/);
      await page.locator('#incident table').nth(1).waitFor();
    });
    const text = await page.locator('#incident').innerText();
    assert.match(text, /4 \(3 open\)/);
    for (const t of ['Authentication spraying', 'Session s-spray-1 used', 'Session s-spray-3 used'])
      assert.ok(text.includes(t), `the detail names ${t}`);
    assert.match(text, /Opened by/);
    assert.match(text, /Alert ended/);
    await screenshot(page, 'incident', true);
    await page.setViewportSize({ width: 420, height: 900 });
    await screenshot(page, 'incident-420', true);
    assert.deepEqual(seen, { csp: [], errors: [] });
  } finally {
    await context.close();
    await app.close();
  }
});
