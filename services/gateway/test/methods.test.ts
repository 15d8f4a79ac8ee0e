import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { MAX_STRING_LENGTH } from '@mcp-audit/schema';
import type { EventDraft } from '../src/audit-events.js';
import { initializeRequest, mcpHeaders, testGateway, until } from './helpers.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/** One JSON-RPC POST over a real socket; the SSE answer's messages. */
async function post(url: string, key: string, body: unknown, sessionId?: string) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      ...mcpHeaders(key),
      'user-agent': 'methods-test/1.0',
      ...(sessionId ? { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' } : {}),
    },
    // NOTE: JSON.stringify escapes NUL, controls and lone surrogates; the server's JSON.parse
    // restores them, so the gateway sees exactly these characters.
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const messages = text.startsWith('{')
    ? [JSON.parse(text) as Record<string, unknown>]
    : text
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
  return { res, messages };
}

async function openSession(url: string, key: string, clientName = 'methods-test') {
  const init = initializeRequest(1);
  const { res } = await post(url, key, {
    ...init,
    params: { ...init.params, clientInfo: { name: clientName, version: '1' } },
  });
  assert.equal(res.status, 200);
  const sid = res.headers.get('mcp-session-id')!;
  assert.ok(sid);
  const done = await fetch(url, {
    method: 'POST',
    headers: { ...mcpHeaders(key), 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  assert.equal(done.status, 202);
  return sid;
}

const byMethodHash = (events: EventDraft[], sha: string) =>
  until(() => events.find((e) => e.labels?.method_sha256 === sha), `the event of method ${sha.slice(0, 8)}`);

test('methods an event cannot carry verbatim (controls, over the limit, lone surrogates) are forwarded unchanged and still audited', async () => {
  const { gw, keys, emitter } = testGateway();
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `${base}/mcp/fixture`;
  try {
    const sid = await openSession(url, keys.user);

    // Terminal escapes and a forged line: the upstream gets them as sent, the event escapes them.
    const forged = 'tools/list\u0000\u001b[2K\r\nforged: ok\u007f';
    const a = await post(url, keys.user, { jsonrpc: '2.0', id: 2, method: forged }, sid);
    assert.equal(a.res.status, 200);
    assert.deepEqual(a.messages[0]!.result, { received_method: forged }, 'reached the upstream unchanged');
    const ea = await byMethodHash(emitter.events, sha256(forged));
    assert.equal(ea.method, 'tools/list\\u0000\\u001b[2K\\u000d\\u000aforged: ok\\u007f');
    assert.equal(ea.labels?.invalid_method, 'control_characters');
    assert.equal(ea.labels?.method_length, String(forged.length));
    assert.equal(ea.kind, 'session');
    assert.equal(ea.outcome, 'ok');
    assert.equal(ea.client.id, 'alice');
    assert.equal(ea.client.session_id, sid);
    assert.equal(ea.http_status, 200);
    assert.match(ea.response_digest ?? '', /^[0-9a-f]{64}$/);
    assert.ok(ea.request_bytes > forged.length);

    // Over the schema's limit: cut, with a marker.
    const long = `x/${'y'.repeat(5000)}`;
    const b = await post(url, keys.user, { jsonrpc: '2.0', id: 3, method: long }, sid);
    assert.deepEqual(b.messages[0]!.result, { received_method: long });
    const eb = await byMethodHash(emitter.events, sha256(long));
    assert.ok(eb.method.length <= MAX_STRING_LENGTH);
    assert.ok(eb.method.startsWith('x/yyy') && eb.method.endsWith('…[truncated]'));
    assert.equal(eb.labels?.invalid_method, 'too_long');
    assert.equal(eb.labels?.method_length, '5002');

    // Under the limit as sent, over it once the emitter's redaction replaced its "secrets" with
    // longer markers: redacted first, then cut, so it stays within the limit.
    const secretive = `m${' password=abcdef'.repeat(60)}`;
    assert.ok(secretive.length < MAX_STRING_LENGTH);
    const c = await post(url, keys.user, { jsonrpc: '2.0', id: 4, method: secretive }, sid);
    assert.deepEqual(c.messages[0]!.result, { received_method: secretive });
    const ec = await byMethodHash(emitter.events, sha256(secretive));
    assert.ok(ec.method.length <= MAX_STRING_LENGTH && ec.method.endsWith('…[truncated]'));
    assert.doesNotMatch(ec.method, /abcdef/);
    assert.match(ec.method, /^m password=\[REDACTED:/);

    const lone = 'tools/\ud800call';
    const d = await post(url, keys.user, { jsonrpc: '2.0', id: 5, method: lone }, sid);
    assert.deepEqual(d.messages[0]!.result, { received_method: lone });
    const ed = await byMethodHash(emitter.events, sha256(lone));
    assert.equal(ed.method, 'tools/\ufffdcall');
    assert.equal(ed.labels?.invalid_method, 'invalid_unicode');

    const empty = await post(url, keys.user, { jsonrpc: '2.0', id: 6, method: '' }, sid);
    assert.deepEqual(empty.messages[0]!.result, { received_method: '' });
    const ee = await byMethodHash(emitter.events, sha256(''));
    assert.equal(ee.method, '(empty)');
    assert.equal(ee.labels?.invalid_method, 'empty');

    // tools/call: a tool name with controls, a missing one, arguments with NUL and lone surrogates.
    await post(
      url,
      keys.user,
      {
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'echo\u001b[8m', arguments: { message: 'a\u0000b', ['k\ud800']: 'c\udc00' } },
      },
      sid,
    );
    const ef = await until(
      () => emitter.events.find((e) => e.labels?.invalid_tool_name === 'control_characters'),
      'the tools/call event with a bad tool name',
    );
    assert.equal(ef.kind, 'tool_call');
    assert.equal(ef.method, 'tools/call');
    assert.equal(ef.tool?.name, 'echo\\u001b[8m');
    assert.equal(ef.labels?.tool_name_sha256, sha256('echo\u001b[8m'));
    assert.deepEqual(ef.args, { message: 'a\ufffdb', 'k\ufffd': 'c\ufffd' });
    await post(url, keys.user, { jsonrpc: '2.0', id: 8, method: 'tools/call', params: {} }, sid);
    const eg = await until(
      () => emitter.events.find((e) => e.labels?.invalid_tool_name === 'missing'),
      'the tools/call event without a tool name',
    );
    assert.equal(eg.tool?.name, '(missing)');
    assert.equal(eg.kind, 'tool_call');

    // Refused before a session exists: audited the same way.
    const refused = await post(url, keys.user, { jsonrpc: '2.0', id: 9, method: `${forged}!` });
    assert.equal(refused.res.status, 400);
    const eh = await byMethodHash(emitter.events, sha256(`${forged}!`));
    assert.equal(eh.error?.code, 'missing_session');
    assert.equal(eh.labels?.refused_by, 'gateway');
    assert.equal(eh.labels?.invalid_method, 'control_characters');
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    assert.doesNotMatch(eh.method, /[\u0000-\u001f]/);

    // A client name with a lone surrogate would have made every event of its session invalid.
    const sid2 = await openSession(url, keys.user, 'agent\ud800');
    const ping = await post(url, keys.user, { jsonrpc: '2.0', id: 2, method: 'ping' }, sid2);
    assert.deepEqual(ping.messages[0]!.result, {});
    const ei = await until(
      () => emitter.events.find((e) => e.method === 'ping' && e.client.session_id === sid2),
      'the ping event of the second session',
    );
    assert.equal(ei.client.agent, 'agent\ufffd');

    assert.deepEqual(emitter.invalid, [], 'every request audited: no draft the emitter would refuse');
  } finally {
    await gw.stop();
  }
});
