import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createLogger } from '@mcp-audit/service-kit';
import type { EventDraft } from '../src/audit-events.js';
import { initializeRequest, mcpHeaders, testGateway, until } from './helpers.js';

const toolsCall = (id: number, secret = 'nothing secret') => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name: 'echo', arguments: { message: secret } },
});

/** The refusal event with this error code (the emitter's v1 check ran in recordingEmitter). */
const refusal = (events: EventDraft[], code: string) =>
  until(() => events.find((e) => e.error?.code === code), `the ${code} event`);

function assertAlice(e: EventDraft, status: number) {
  assert.equal(e.client.id, 'alice');
  assert.equal(e.client.user, 'alice@example.com');
  assert.equal(e.client.ip, '127.0.0.1');
  assert.equal(e.client.user_agent, 'refusal-test/1.0');
  assert.deepEqual(e.auth, { method: 'api_key', result: 'success' });
  assert.equal(e.http_status, status);
  assert.equal(e.labels?.refused_by, 'gateway');
}

test('refused before forwarding: unknown upstream, no session, unknown session are each audited', async () => {
  const { gw, keys, emitter, connects } = testGateway();
  const headers = { ...mcpHeaders(keys.user), 'user-agent': 'refusal-test/1.0' };
  try {
    const unknown = await gw.app.inject({
      method: 'POST',
      url: '/mcp/no-such-upstream',
      headers,
      payload: toolsCall(1),
    });
    assert.equal(unknown.statusCode, 404);
    const u = await refusal(emitter.events, 'unknown_upstream');
    assertAlice(u, 404);
    assert.equal(u.outcome, 'error');
    assert.equal(u.kind, 'tool_call');
    assert.deepEqual(u.tool, { name: 'echo' });
    assert.deepEqual(u.server, { name: 'gateway', transport: 'http' });
    assert.equal(u.labels?.requested_upstream, 'no-such-upstream');

    const noSession = await gw.app.inject({
      method: 'POST',
      url: '/mcp/fixture',
      headers,
      payload: toolsCall(2),
    });
    assert.equal(noSession.statusCode, 400);
    assert.equal(noSession.json().error.message, 'Bad Request: No valid session ID provided');
    const n = await refusal(emitter.events, 'missing_session');
    assertAlice(n, 400);
    assert.deepEqual(n.server, { name: 'fixture', transport: 'stdio' });
    assert.equal(n.rpc_error_code, -32000);
    assert.ok(n.request_bytes > 0 && n.response_bytes > 0);

    // A GET (no body) without a session: one event for the HTTP request itself.
    const get = await gw.app.inject({ method: 'GET', url: '/mcp/fixture', headers });
    assert.equal(get.statusCode, 400);
    await until(
      () => emitter.events.find((e) => e.method === 'http:GET' && e.error?.code === 'missing_session'),
      'the GET refusal',
    );

    const stale = await gw.app.inject({
      method: 'POST',
      url: '/mcp/fixture',
      headers: { ...headers, 'mcp-session-id': 'a-session-that-never-was' },
      payload: toolsCall(3),
    });
    assert.equal(stale.statusCode, 404);
    assert.equal(stale.json().error.message, 'Session not found');
    const s = await refusal(emitter.events, 'unknown_session');
    assertAlice(s, 404);
    assert.equal(s.outcome, 'error');
    assert.equal(s.client.session_id, 'a-session-that-never-was');
    assert.equal(connects(), 0, 'nothing reached an upstream');
  } finally {
    await gw.stop();
  }
});

test("another client's session id: 404 as for any unknown session, audited as denied with the session id", async () => {
  const { gw, keys, emitter } = testGateway();
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const client = new Client({ name: 'owner', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp/fixture`), {
      requestInit: { headers: { authorization: `Bearer ${keys.user}` } },
    });
    await client.connect(transport);
    const res = await fetch(`${base}/mcp/fixture`, {
      method: 'POST',
      headers: {
        ...mcpHeaders(keys.admin),
        'user-agent': 'hijacker/0.1',
        'mcp-session-id': transport.sessionId!,
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
    });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: { message: string } }).error.message, 'Session not found');
    const e = await refusal(emitter.events, 'session_of_another_client');
    assert.equal(e.outcome, 'denied');
    assert.equal(e.client.id, 'ops', 'the identity of the key presented, not of the owner');
    assert.equal(e.client.user_agent, 'hijacker/0.1');
    assert.equal(e.client.session_id, transport.sessionId);
    assert.equal(e.kind, 'tool_list');
    assert.equal(e.method, 'tools/list');
    assert.equal(e.http_status, 404);
    assert.match(e.error?.message ?? '', /belongs to another client \(alice\)/);
    await client.close();
  } finally {
    await gw.stop();
  }
});

test('fastify refusals: body too large, invalid JSON and another media type are audited after authentication, never quoting the body', async () => {
  const lines: string[] = [];
  const log = createLogger('gateway-test', {
    level: 'debug',
    destination: { write: (l: string) => void lines.push(l) },
  });
  const { gw, keys, emitter } = testGateway({ limits: { body_bytes: 2048 }, log });
  const headers = { ...mcpHeaders(keys.user), 'user-agent': 'refusal-test/1.0' };
  const secret = 'sk-live-0123456789abcdefSECRET';
  try {
    const big = await gw.app.inject({
      method: 'POST',
      url: '/mcp/fixture',
      headers,
      payload: toolsCall(1, `${secret}${'x'.repeat(4096)}`),
    });
    assert.equal(big.statusCode, 413);
    assert.equal(big.json().jsonrpc, '2.0');
    const b = await refusal(emitter.events, 'body_too_large');
    assertAlice(b, 413);
    assert.equal(b.outcome, 'error');
    assert.equal(b.method, 'http:POST');
    assert.equal(b.labels?.fastify_code, 'FST_ERR_CTP_BODY_TOO_LARGE');
    assert.match(b.error?.message ?? '', /limits\.body_bytes \(2048 bytes\)/);
    assert.ok(b.request_bytes > 4096, 'the size the client claimed');

    const broken = await gw.app.inject({
      method: 'POST',
      url: '/mcp/fixture',
      headers,
      payload: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"key":"${secret}"`,
    });
    assert.equal(broken.statusCode, 400);
    assert.equal(broken.json().error.code, -32700);
    const j = await refusal(emitter.events, 'invalid_json');
    assertAlice(j, 400);
    assert.equal(j.rpc_error_code, -32700);

    const xml = await gw.app.inject({
      method: 'POST',
      url: '/mcp/fixture',
      headers: { ...headers, 'content-type': 'application/xml' },
      payload: '<call/>',
    });
    assert.equal(xml.statusCode, 415);
    assertAlice(await refusal(emitter.events, 'unsupported_media_type'), 415);

    // Without a valid key the body is never read: 401 and an auth event, not a 413.
    const stranger = await gw.app.inject({
      method: 'POST',
      url: '/mcp/fixture',
      headers: { 'content-type': 'application/json', 'user-agent': 'stranger/1' },
      payload: toolsCall(9, 'y'.repeat(4096)),
    });
    assert.equal(stranger.statusCode, 401);
    assert.equal(emitter.events.at(-1)?.outcome, 'auth_failed');

    for (const text of [JSON.stringify(emitter.events), lines.join(''), big.body, broken.body])
      assert.ok(!text.includes(secret), 'the body never reaches an event, a log line or the answer');
  } finally {
    await gw.stop();
  }
});

test("the SDK transport's own refusals inside a session (406: no acceptable Accept) are audited", async () => {
  const { gw, keys, emitter } = testGateway();
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const init = await fetch(`${base}/mcp/fixture`, {
      method: 'POST',
      headers: mcpHeaders(keys.user),
      body: JSON.stringify(initializeRequest()),
    });
    assert.equal(init.status, 200);
    const sid = init.headers.get('mcp-session-id')!;
    await init.text();
    const res = await fetch(`${base}/mcp/fixture`, {
      method: 'POST',
      headers: {
        ...mcpHeaders(keys.user),
        accept: 'application/json',
        'mcp-session-id': sid,
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify(toolsCall(2)),
    });
    assert.equal(res.status, 406);
    await res.text();
    const e = await refusal(emitter.events, 'refused_by_transport');
    assert.equal(e.http_status, 406);
    assert.equal(e.kind, 'tool_call');
    assert.equal(e.client.id, 'alice');
    assert.equal(e.client.session_id, sid);
    assert.equal(e.labels?.refused_by, 'mcp_transport');
  } finally {
    await gw.stop();
  }
});
