import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, emptyClickHouse, KEYS, memoryAccessLog, testApi } from './helpers.js';
import { csvCell } from '../src/export.js';

test('validation errors name the field; hostile lists and strings are a clear 400', async () => {
  const { app } = await testApi();
  const many = Array.from({ length: 10_000 }, (_, i) => `client=c${i}`).join('&');
  const r1 = await app.inject({ url: `/api/v1/events?${many}`, headers: bearer(KEYS.analyst) });
  assert.equal(r1.statusCode, 400);
  assert.equal(r1.json().error.code, 'AUDIT_ERR_VALIDATION');
  assert.match(r1.json().error.message, /^client/);
  const r2 = await app.inject({ url: `/api/v1/events?q=${'x'.repeat(5000)}`, headers: bearer(KEYS.analyst) });
  assert.equal(r2.statusCode, 400);
  assert.match(r2.json().error.message, /^q:/);
  const r3 = await app.inject({ url: '/api/v1/events?limit=5000', headers: bearer(KEYS.analyst) });
  assert.match(r3.json().error.message, /^limit:/);
  const r4 = await app.inject({
    url: '/api/v1/events?from=2024-01-01T00:00:00Z&to=2024-03-01T00:00:00Z',
    headers: bearer(KEYS.analyst),
  });
  assert.equal(r4.statusCode, 400);
  assert.match(r4.json().error.message, /31 days/);
  const r5 = await app.inject({
    url: '/api/v1/events?cursor=bm90LWEtY3Vyc29y',
    headers: bearer(KEYS.analyst),
  });
  assert.match(r5.json().error.message, /^cursor:/);
  const r6 = await app.inject({ url: '/api/v1/events/not-a-uuid', headers: bearer(KEYS.analyst) });
  assert.equal(r6.statusCode, 400);
  assert.match(r6.json().error.message, /^event_id:/);
  await app.close();
});

test('hostile values reach SQL only as encoded literals', async () => {
  const queries: string[] = [];
  const ch = emptyClickHouse(queries);
  // capture the SQL text through toSql
  const { toSql } = await import('@mcp-audit/clickhouse');
  ch.query = async (q) => {
    queries.push(toSql(q));
    return [];
  };
  const { app } = await testApi({ reader: ch });
  const evil = [
    "a' OR 1=1 --",
    'b\\',
    'c\u0000d',
    'ｃｌｉｅｎｔ',
    "x') UNION ALL SELECT * FROM system.users --",
  ];
  const qs = evil.map((e) => `client=${encodeURIComponent(e)}`).join('&');
  const r = await app.inject({
    url: `/api/v1/events?${qs}&q=${encodeURIComponent("%'_\\")}`,
    headers: bearer(KEYS.analyst),
  });
  assert.equal(r.statusCode, 200, r.body);
  const text = queries.join('\n');
  assert.ok(text.includes("'a\\' OR 1=1 --'"), text);
  assert.ok(text.includes("'b\\\\'"));
  assert.ok(text.includes("'c\\x00d'"));
  assert.ok(text.includes("'x\\') UNION ALL SELECT * FROM system.users --'"), text);
  await app.close();
});

test('the access log: a row per audited request, before the answer; refused insert → 503 and no data', async () => {
  const ok = await testApi();
  const r = await ok.app.inject({
    url: '/api/v1/events?client=a&client=b',
    headers: { ...bearer(KEYS.analyst), 'user-agent': 'ua-test' },
  });
  assert.equal(r.statusCode, 200);
  assert.equal(ok.accessLog.rows.length, 1);
  const row = ok.accessLog.rows[0]!;
  assert.equal(row.key_id, 'k-analyst');
  assert.equal(row.route, '/api/v1/events');
  assert.equal(row.status, 200);
  assert.equal(row.user_agent, 'ua-test');
  assert.deepEqual(JSON.parse(row.filters).client, ['a', 'b']);
  assert.ok(row.to_ms - row.from_ms === 24 * 3_600_000);
  // Denied requests to audited routes are logged too.
  await ok.app.inject({ url: '/api/v1/access-log', headers: bearer(KEYS.analyst) });
  assert.equal(ok.accessLog.rows.at(-1)!.status, 403);
  await ok.app.close();

  const bad = await testApi({ accessLog: memoryAccessLog(true) });
  const r2 = await bad.app.inject({ url: '/api/v1/events', headers: bearer(KEYS.analyst) });
  assert.equal(r2.statusCode, 503);
  assert.deepEqual(Object.keys(r2.json()), ['error']);
  assert.equal(r2.json().error.code, 'AUDIT_ERR_AUDIT_LOG');
  const r3 = await bad.app.inject({ url: '/api/v1/events/export?format=csv', headers: bearer(KEYS.analyst) });
  assert.equal(r3.statusCode, 503);
  assert.equal(r3.headers['content-disposition'], undefined);
  await bad.app.close();
});

test('Host, Origin, security headers, body cap, rate limit', async () => {
  const { app } = await testApi({}, { rateLimitPerMinute: 3 });
  const evilHost = await app.inject({
    url: '/api/v1/events',
    headers: { ...bearer(KEYS.analyst), host: 'evil.example:9475' },
  });
  assert.equal(evilHost.statusCode, 403);
  const evilOrigin = await app.inject({
    url: '/api/v1/events',
    headers: { ...bearer(KEYS.analyst), origin: 'https://evil.example' },
  });
  assert.equal(evilOrigin.statusCode, 403);
  const same = await app.inject({
    url: '/api/v1/events',
    headers: { ...bearer(KEYS.analyst), host: '127.0.0.1:9475', origin: 'http://127.0.0.1:9475' },
  });
  assert.equal(same.statusCode, 200);
  assert.match(String(same.headers['content-security-policy']), /default-src 'self'/);
  assert.doesNotMatch(String(same.headers['content-security-policy']), /unsafe-inline|https:/);
  assert.equal(same.headers['x-content-type-options'], 'nosniff');
  const big = await app.inject({
    method: 'POST',
    url: '/api/v1/alerts/0190f3c4-2222-7abc-8def-0123456789ab/notes',
    headers: { ...bearer(KEYS.admin), 'content-type': 'application/json' },
    payload: JSON.stringify({ note: 'x'.repeat(70 * 1024) }),
  });
  assert.equal(big.statusCode, 413);
  assert.equal(big.json().error.code, 'AUDIT_ERR_BODY_TOO_LARGE');
  let last;
  for (let i = 0; i < 4; i++)
    last = await app.inject({ url: '/api/v1/events', headers: bearer(KEYS.compliance) });
  // compliance is refused (403) before its key's bucket is touched; the analyst's bucket runs out
  for (let i = 0; i < 3; i++)
    last = await app.inject({ url: '/api/v1/events', headers: bearer(KEYS.analyst) });
  assert.equal(last!.statusCode, 429);
  assert.equal(last!.json().error.code, 'AUDIT_ERR_RATE_LIMITED');
  assert.ok(Number(last!.headers['retry-after']) >= 1);
  await app.close();
});

test('console session: cookie flags, CSRF, logout, revocation ends it', async () => {
  const { app } = await testApi({}, { cookieSecure: true });
  const login = await app.inject({
    method: 'POST',
    url: '/api/v1/session',
    payload: { key: KEYS.analyst.plain },
  });
  assert.equal(login.statusCode, 200);
  const setCookie = String(login.headers['set-cookie']);
  assert.match(setCookie, /mcpa_session=/);
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Strict/);
  assert.match(setCookie, /Secure/);
  const { csrf_token, key_id, scopes } = login.json();
  assert.equal(key_id, 'k-analyst');
  assert.deepEqual(scopes, ['analyst']);
  const cookie = `mcpa_session=${login.cookies[0]!.value}`;
  const me = await app.inject({ url: '/api/v1/session', headers: { cookie } });
  assert.equal(me.statusCode, 200);
  const read = await app.inject({ url: '/api/v1/events', headers: { cookie } });
  assert.equal(read.statusCode, 200);
  const noCsrf = await app.inject({
    method: 'POST',
    url: '/api/v1/alerts/bulk',
    headers: { cookie },
    payload: { filter: {}, action: 'acknowledge' },
  });
  assert.equal(noCsrf.statusCode, 403);
  const withCsrf = await app.inject({
    method: 'POST',
    url: '/api/v1/alerts/bulk',
    headers: { cookie, 'x-csrf-token': csrf_token },
    payload: { filter: {}, action: 'acknowledge' },
  });
  assert.equal(withCsrf.statusCode, 200, withCsrf.body);
  const bad = await app.inject({
    method: 'POST',
    url: '/api/v1/session',
    payload: { key: 'mcpa_wrongwrongwrongwrong' },
  });
  assert.equal(bad.statusCode, 401);
  const out = await app.inject({
    method: 'DELETE',
    url: '/api/v1/session',
    headers: { cookie, 'x-csrf-token': csrf_token },
  });
  assert.equal(out.statusCode, 204);
  assert.equal((await app.inject({ url: '/api/v1/session', headers: { cookie } })).statusCode, 401);
  await app.close();
});

test('OpenAPI document and the reference are served; console routes without a build answer 503', async () => {
  const { app } = await testApi();
  const doc = await app.inject({ url: '/api/v1/openapi.json' });
  assert.equal(doc.statusCode, 200);
  const spec = doc.json();
  assert.equal(spec.openapi, '3.0.3');
  assert.ok(spec.paths['/api/v1/events'].get.parameters.some((p: { name: string }) => p.name === 'client'));
  assert.ok(spec.paths['/api/v1/alerts/{alert_id}/resolve'].post.requestBody);
  const ui = await app.inject({ url: '/api/docs/' });
  assert.ok(ui.statusCode === 200 || ui.statusCode === 302, String(ui.statusCode));
  const page = await app.inject({ url: '/alerts/0190f3c4-2222-7abc-8def-0123456789ab' });
  assert.equal(page.statusCode, 503);
  assert.match(page.body, /not built/);
  assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
  await app.close();
});

test('CSV cells that a spreadsheet would run are defused', () => {
  assert.equal(csvCell('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`);
  assert.equal(csvCell('+1'), `"'+1"`);
  assert.equal(csvCell('-2'), `"'-2"`);
  assert.equal(csvCell('@sum'), `"'@sum"`);
  assert.equal(csvCell('plain'), 'plain');
  assert.equal(csvCell('a,b'), '"a,b"');
});
