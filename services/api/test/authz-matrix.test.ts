import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import type { RegisteredRoute } from '../src/app.js';
import { grants } from '../src/api-keys.js';
import { bearer, emptyCompliance, KEYS, testApi } from './helpers.js';

/**
 * The authorization matrix: every route the app REGISTERED (collected by its onRoute hook, not a hand
 * list) × { no credential, each scope, a revoked key, a cookie session without CSRF }. A 2xx/4xx-other
 * answer past authorization means authorized; 401/403 mean refused. Data answers come from an empty
 * ClickHouse, so an authorized request may still end in 404/409/400: only 401/403 count as refused.
 */
const sample: Record<string, string> = {
  event_id: '0190f3c4-1111-7abc-8def-0123456789ab',
  alert_id: '0190f3c4-2222-7abc-8def-0123456789ab',
  incident_id: '0190f3c4-3333-7abc-8def-0123456789ab',
  session_id: 's1',
  client_id: 'client-a',
  '*': 'x.js',
};
const concrete = (url: string) =>
  url.replace(/:([a-z_]+)|\*/g, (m, p: string | undefined) => sample[p ?? '*'] ?? 'x');
const bodyFor = (url: string): unknown =>
  url.endsWith('/acknowledge')
    ? {}
    : url.endsWith('/assign')
      ? { assignee: 'bob' }
      : url.endsWith('/notes')
        ? { note: 'n' }
        : url.endsWith('/resolve')
          ? { reason: 'benign' }
          : url.endsWith('/bulk')
            ? { filter: {}, action: 'acknowledge' }
            : url.endsWith('/session')
              ? { key: 'not-a-key-0123456789' }
              : undefined;

async function call(app: FastifyInstance, r: RegisteredRoute, headers: Record<string, string>) {
  const body = bodyFor(r.url);
  return app.inject({
    method: r.method as 'GET',
    url: concrete(r.url),
    headers: {
      ...headers,
      ...(body !== undefined && r.method !== 'GET' ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined && r.method !== 'GET' ? { payload: JSON.stringify(body) } : {}),
  });
}

test('authorization matrix over the whole registered route table', async () => {
  const { app } = await testApi(
    { compliance: emptyCompliance() },
    { authFailuresPerMinute: 1e6, rateLimitPerMinute: 1e6, addressRateLimitPerMinute: 1e6 },
  );
  const table = (app as unknown as { routeTable: RegisteredRoute[] }).routeTable;
  const apiRoutes = table.filter((r) => r.url.startsWith('/api/v1/'));
  assert.ok(apiRoutes.length >= 17, `expected the API routes, got ${apiRoutes.length}`);
  // Every API route declares a scope; only the reference and the login exchange are not keyed.
  for (const r of apiRoutes) assert.ok(r.scope, `${r.method} ${r.url} declares no scope`);

  // A cookie session of the admin key, to check that cookies without CSRF cannot change anything.
  const login = await app.inject({
    method: 'POST',
    url: '/api/v1/session',
    payload: { key: KEYS.admin.plain },
  });
  assert.equal(login.statusCode, 200, login.body);
  const cookie = `mcpa_session=${login.cookies.find((c) => c.name === 'mcpa_session')!.value}`;

  const principals: Array<[string, Record<string, string>, readonly string[] | null]> = [
    ['none', {}, null],
    ['analyst', bearer(KEYS.analyst), ['analyst']],
    ['compliance', bearer(KEYS.compliance), ['compliance']],
    ['admin', bearer(KEYS.admin), ['admin']],
    ['revoked', bearer(KEYS.revoked), null],
  ];
  let cells = 0;
  const refused = (s: number) => s === 401 || s === 403;
  for (const r of table) {
    for (const [who, headers, scopes] of principals) {
      const res = await call(app, r, headers);
      cells++;
      const label = `${who} ${r.method} ${r.url} → ${res.statusCode} ${res.body.slice(0, 120)}`;
      if (r.scope === undefined || r.scope === 'public') {
        assert.ok(!refused(res.statusCode), label);
      } else if (r.scope === 'session') {
        // The login exchange takes a key in its body; GET/DELETE answer for a live session only.
        if (who === 'revoked') assert.equal(res.statusCode, 401, label);
        if (r.method === 'GET') assert.equal(res.statusCode, 401, label);
      } else if (scopes === null) {
        assert.equal(res.statusCode, 401, label);
      } else if (grants(scopes, r.scope)) {
        assert.ok(!refused(res.statusCode) && res.statusCode < 500, label);
      } else {
        assert.equal(res.statusCode, 403, label);
      }
    }
    // Cookie session (admin) without the CSRF header: reads pass, state changes are refused.
    if (r.scope !== undefined && r.scope !== 'public' && r.scope !== 'session') {
      const res = await call(app, r, { cookie });
      cells++;
      const label = `cookie-no-csrf ${r.method} ${r.url} → ${res.statusCode}`;
      if (r.method === 'GET') assert.ok(!refused(res.statusCode), label);
      else {
        assert.equal(res.statusCode, 403, label);
        assert.match(res.body, /CSRF/);
      }
    }
  }
  process.stdout.write(
    `# authz matrix: ${table.length} routes (${apiRoutes.length} under /api/v1), ${cells} cells\n`,
  );
  await app.close();
});
