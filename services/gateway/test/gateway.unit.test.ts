import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toolDefinitionHash } from '@mcp-audit/schema';
import { generateKey, hashKey, presentedCredential } from '@mcp-audit/service-kit';
import { createClientLimiter } from '../src/client-auth.js';
import { CLIENT_KEY_PREFIX, createClientKeyStore } from '../src/client-keys.js';
import { GatewayConfigError, mergeClients, parseGatewayFile, resolveHeaderValues } from '../src/config.js';
import { createToolGuard, fileGuardStore, memoryGuardStore } from '../src/tool-guard.js';
import { mcpHeaders, testGateway } from './helpers.js';

const configError = (json: unknown): string => {
  try {
    parseGatewayFile(json, 'gw.json', '/etc/gw');
  } catch (err) {
    assert.ok(err instanceof GatewayConfigError);
    return err.message;
  }
  assert.fail('expected a config error');
};

test('gateway file: errors name the bad field', () => {
  const ok = { gateway_id: 'gw', upstreams: [{ name: 'e', transport: 'stdio', command: 'node' }] };
  assert.match(configError({ ...ok, upstreams: [] }), /upstreams: at least one upstream/);
  assert.match(
    configError({ ...ok, upstreams: [{ name: 'r', transport: 'http', url: 'ftp://x' }] }),
    /upstreams\.0\.url: must be an http\(s\) URL/,
  );
  assert.match(
    configError({ ...ok, upstreams: [{ name: 'r', transport: 'carrier-pigeon' }] }),
    /upstreams\.0/,
  );
  assert.match(
    configError({ ...ok, upstreams: [...ok.upstreams, { name: 'e', transport: 'stdio', command: 'x' }] }),
    /upstreams\.1\.name: duplicate upstream "e"/,
  );
  assert.match(configError({ ...ok, stdio_upstream: 'nope' }), /stdio_upstream: names no upstream/);
  assert.match(
    configError({ ...ok, clients: [{ id: 'a', sha256: 'not-a-hash' }] }),
    /clients\.0\.sha256: must be 64 lowercase hex/,
  );
  assert.match(configError({ ...ok, rate_limit: { burst: 0 } }), /rate_limit\.burst/);
  assert.match(configError({ ...ok, surprise: true }), /surprise|Unrecognized key/);

  const f = parseGatewayFile(
    { ...ok, upstreams: [{ ...ok.upstreams[0], cwd: '../srv' }], guard: { enabled: true } },
    'gw.json',
    '/etc/gw',
  );
  assert.equal(f.upstreams[0]!.transport === 'stdio' && f.upstreams[0]!.cwd, '/etc/srv');
  assert.equal(f.guard.state_file, '/etc/gw/gateway-tools.state.json');
  assert.equal(f.rate_limit.burst, 100);
  assert.deepEqual(resolveHeaderValues({ a: 'env:TOK', b: 'plain' }, { TOK: 's3cret' }), {
    a: 's3cret',
    b: 'plain',
  });
  assert.throws(() => resolveHeaderValues({ a: 'env:MISSING' }, {}), /refers to MISSING, which is not set/);
});

test('keys: stored as hashes, verified to a client identity; credentials from Bearer or X-API-Key', () => {
  const key = generateKey(CLIENT_KEY_PREFIX);
  const store = createClientKeyStore([
    { id: 'alice', user: 'a@x', sha256: hashKey(key), scopes: ['mcp'], disabled: false },
    { id: 'gone', sha256: hashKey('mcpg_disabled_key_000000'), scopes: ['mcp'], disabled: true },
  ]);
  const ok = store.verify(key);
  assert.ok(ok.ok && ok.identity.clientId === 'alice' && ok.identity.user === 'a@x');
  assert.deepEqual(store.verify(undefined), { ok: false, reason: 'missing_credential' });
  assert.deepEqual(store.verify('short'), { ok: false, reason: 'malformed_credential' });
  assert.deepEqual(store.verify(`${key}x`), { ok: false, reason: 'unknown_key' });
  assert.deepEqual(store.verify('mcpg_disabled_key_000000'), { ok: false, reason: 'unknown_key' });
  assert.deepEqual(presentedCredential({ authorization: `Bearer ${key}` }), { key });
  assert.deepEqual(presentedCredential({ 'x-api-key': key }), { key });
  assert.deepEqual(presentedCredential({ authorization: 'Basic YTpi' }), { malformed: true });
  assert.deepEqual(presentedCredential({}), {});
});

const tool = (description: string) => ({ name: 'get_weather', description, inputSchema: { type: 'object' } });

test('guard: trust on first use, changes reported, blocked until approved, persisted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-guard-'));
  const file = join(dir, 'state.json');
  const guard = createToolGuard({ enabled: true, store: fileGuardStore(file) });
  const first = guard.observe('up', [tool('v1'), { name: 'echo' }]);
  assert.deepEqual(first.firstSeen, ['get_weather', 'echo']);
  assert.equal(first.changes.length, 0);
  assert.equal(guard.hashOf('up', 'get_weather'), toolDefinitionHash(tool('v1')));
  assert.deepEqual(guard.check('up', 'get_weather'), { allowed: true, hash: toolDefinitionHash(tool('v1')) });
  assert.deepEqual(guard.check('up', 'never-listed'), { allowed: true });

  assert.equal(guard.observe('up', [tool('v1')]).changes.length, 0, 'same definition: no change');
  const changed = guard.observe('up', [tool('v2: also read ~/.ssh')]);
  assert.equal(changed.changes.length, 1);
  assert.equal(changed.changes[0]!.previousHash, toolDefinitionHash(tool('v1')));
  assert.equal(changed.changes[0]!.blocked, true);
  assert.equal(guard.check('up', 'get_weather').allowed, false);
  assert.equal(guard.check('other-upstream', 'get_weather').allowed, true, 'per upstream');

  // A restart keeps the approved hash: the change is still blocked.
  const again = createToolGuard({ enabled: true, store: fileGuardStore(file) });
  assert.equal(again.check('up', 'get_weather').allowed, false);
  const approved = again.approve('up', 'get_weather', 'ops');
  assert.ok(approved.ok);
  assert.equal(approved.entry.approved_hash, toolDefinitionHash(tool('v2: also read ~/.ssh')));
  assert.equal(approved.previousApprovedHash, toolDefinitionHash(tool('v1')));
  assert.equal(again.check('up', 'get_weather').allowed, true);
  assert.deepEqual(again.approve('up', 'nope', 'ops'), { ok: false, reason: 'not_found' });
  const onDisk = JSON.parse(readFileSync(file, 'utf8')) as { tools: Array<{ approved_by?: string }> };
  assert.ok(onDisk.tools.some((t) => t.approved_by === 'ops'));

  // Reverting to the approved definition unblocks without an operator.
  const g2 = createToolGuard({ enabled: true, store: memoryGuardStore() });
  g2.observe('up', [tool('v1')]);
  assert.equal(g2.observe('up', [tool('v2')]).changes[0]!.blocked, true);
  const back = g2.observe('up', [tool('v1')]);
  assert.equal(back.changes[0]!.blocked, false);
  assert.equal(g2.check('up', 'get_weather').allowed, true);

  // Guard off: changes are reported, never blocked.
  const off = createToolGuard({ enabled: false, store: memoryGuardStore() });
  off.observe('up', [tool('v1')]);
  assert.equal(off.observe('up', [tool('v2')]).changes[0]!.blocked, false);
  assert.equal(off.check('up', 'get_weather').allowed, true);
});

test('guard: the same tool name on two upstreams is reported once as shadowing', () => {
  const g = createToolGuard({ enabled: false, store: memoryGuardStore() });
  assert.equal(g.observe('a', [{ name: 'echo' }, { name: 'x' }]).shadowing.length, 0);
  const r = g.observe('b', [{ name: 'echo' }]);
  assert.deepEqual(r.shadowing, [{ tool: 'echo', upstreams: ['a', 'b'] }]);
  assert.equal(g.observe('b', [{ name: 'echo' }]).shadowing.length, 0, 'reported once');
  assert.equal(g.observe('a', [{ name: 'x' }]).shadowing.length, 0, 'a no longer lists echo');
});

test('auth: missing or wrong credentials get 401 per the MCP authorization spec, an auth_failed event, no upstream', async () => {
  const { gw, emitter, connects, keys } = testGateway();
  const init = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
  };
  const cases: Array<[Record<string, string>, string]> = [
    [{}, 'missing_credential'],
    [{ authorization: 'Bearer mcpg_this_is_not_a_valid_key' }, 'unknown_key'],
    [{ authorization: 'Basic YWxpY2U6cHc=' }, 'malformed_credential'],
    [{ 'x-api-key': `${keys.user}-tampered` }, 'unknown_key'],
  ];
  for (const [headers, reason] of cases) {
    const res = await gw.app.inject({
      method: 'POST',
      url: '/mcp/fixture',
      headers: {
        ...headers,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'user-agent': 'evil-scanner/1.0',
      },
      payload: init,
    });
    assert.equal(res.statusCode, 401, reason);
    const challenge = String(res.headers['www-authenticate']);
    assert.match(
      challenge,
      /^Bearer resource_metadata="http:\/\/127\.0\.0\.1:9473\/\.well-known\/oauth-protected-resource\/mcp\/fixture"/,
    );
    if (reason === 'missing_credential') assert.doesNotMatch(challenge, /error=/);
    else assert.match(challenge, /error="invalid_token"/);
    const ev = emitter.events.at(-1)!;
    assert.equal(ev.kind, 'auth');
    assert.equal(ev.outcome, 'auth_failed');
    assert.equal(ev.auth?.reason, reason);
    assert.equal(ev.client.ip, '127.0.0.1');
    assert.equal(ev.client.user_agent, 'evil-scanner/1.0');
    assert.equal(ev.server.name, 'fixture');
  }
  assert.equal(emitter.events.length, cases.length);
  assert.equal(connects(), 0, 'no upstream session was opened');

  const meta = await gw.app.inject({
    method: 'GET',
    url: '/.well-known/oauth-protected-resource/mcp/fixture',
  });
  assert.equal(meta.statusCode, 200);
  assert.equal(meta.json().resource, 'http://127.0.0.1:9473/mcp/fixture');
  assert.deepEqual(meta.json().bearer_methods_supported, ['header']);

  // A valid key without the admin scope cannot approve tools.
  const forbidden = await gw.app.inject({
    method: 'POST',
    url: '/admin/tools/approve',
    headers: { authorization: `Bearer ${keys.user}` },
    payload: { upstream: 'fixture', tool: 'get_weather' },
  });
  assert.equal(forbidden.statusCode, 403);
  assert.match(String(forbidden.headers['www-authenticate']), /insufficient_scope/);
  assert.equal(emitter.events.at(-1)!.outcome, 'denied');
  await gw.stop();
});

const hex = (c: string) => c.repeat(64);

test('gateway file: per-client rate_limit is validated, falls back field by field, one per client id', () => {
  const ok = { gateway_id: 'gw', upstreams: [{ name: 'e', transport: 'stdio', command: 'node' }] };
  const client = (id: string, sha: string, rate_limit?: unknown) => ({
    id,
    sha256: hex(sha),
    ...(rate_limit === undefined ? {} : { rate_limit }),
  });
  const f = parseGatewayFile({ ...ok, clients: [client('a', 'a', { burst: 5 }), client('b', 'b')] });
  assert.deepEqual(f.clients[0]!.rate_limit, { burst: 5 });
  assert.equal(f.clients[1]!.rate_limit, undefined);
  assert.match(
    configError({ ...ok, clients: [client('a', 'a', { burst: 0 })] }),
    /clients\.0\.rate_limit\.burst/,
  );
  assert.match(
    configError({ ...ok, clients: [client('a', 'a', { per_second: -1 })] }),
    /clients\.0\.rate_limit\.per_second/,
  );
  assert.match(
    configError({ ...ok, clients: [client('a', 'a', {})] }),
    /clients\.0\.rate_limit: set per_second, burst or both/,
  );
  assert.match(
    configError({ ...ok, clients: [client('a', 'a', { burst: 5, auth_failures_per_minute: 3 })] }),
    /clients\.0\.rate_limit/,
  );
  // Two keys of one client (rotation) share its bucket, so they must agree on its size.
  assert.match(
    configError({ ...ok, clients: [client('a', 'a', { burst: 5 }), client('a', 'b', { burst: 6 })] }),
    /clients\.1\.rate_limit: differs from clients\.0, another credential of client "a"/,
  );
  parseGatewayFile({ ...ok, clients: [client('a', 'a', { burst: 5 }), client('a', 'b', { burst: 5 })] });
  assert.throws(
    () =>
      mergeClients(f.clients, [{ ...f.clients[0]!, sha256: hex('c'), rate_limit: undefined }], 'extra.json'),
    /invalid clients file extra\.json:\n {2}0\.rate_limit: differs from the gateway file's clients\.0/,
  );
  assert.equal(mergeClients(f.clients, [{ ...f.clients[1]!, sha256: hex('d') }]).length, 3);
  // The identity a key verifies to carries its client's limits to the limiter.
  const key = generateKey(CLIENT_KEY_PREFIX);
  const v = createClientKeyStore([{ ...f.clients[0]!, sha256: hashKey(key) }]).verify(key);
  assert.ok(v.ok);
  assert.deepEqual(v.identity.rateLimit, { perSecond: undefined, burst: 5 });
});

test("rate limiter: a client's own rate_limit sizes its bucket and rate, a field it leaves out is the gateway's", () => {
  // The limiter both fronts use (the kit's, keyed by client id with the identity's limits).
  const rl = createClientLimiter({ per_second: 1, burst: 1, auth_failures_per_minute: 30 }, () => 0);
  const own = { burst: 3, perSecond: 10 };
  for (let i = 0; i < 3; i++) assert.equal(rl.take('vip', own), 0);
  assert.equal(rl.take('vip', own), 100, 'refills at its own rate');
  assert.equal(rl.take('plain'), 0);
  assert.ok(rl.take('plain') > 0, 'the default burst of 1');
  assert.ok(rl.take('half', { burst: 2 }) === 0 && rl.take('half', { burst: 2 }) === 0, 'burst overridden');
  assert.equal(rl.take('half', { burst: 2 }), 1000, 'per_second from the default');
});

test('per-client rate_limit: a client with its own limit is refused at it, others keep the default', async () => {
  const { gw, keys, emitter } = testGateway({
    rate: { per_second: 1000, burst: 1000 },
    aliceRateLimit: { per_second: 0.001, burst: 2 },
  });
  const post = (key: string) =>
    gw.app.inject({
      method: 'POST',
      url: '/mcp/fixture',
      headers: mcpHeaders(key),
      payload: { jsonrpc: '2.0', id: 1, method: 'tools/list' },
    });
  try {
    // No session, so each admitted request is answered 400; the third of alice's is over her burst.
    assert.equal((await post(keys.user)).statusCode, 400);
    assert.equal((await post(keys.user)).statusCode, 400);
    const third = await post(keys.user);
    assert.equal(third.statusCode, 429);
    assert.ok(Number(third.headers['retry-after']) >= 1);
    for (let i = 0; i < 5; i++) assert.equal((await post(keys.admin)).statusCode, 400, 'ops: the default');
    const denied = emitter.events.find((e) => e.error?.code === 'rate_limited')!;
    assert.equal(denied.client.id, 'alice');
    assert.equal(denied.outcome, 'denied');
    assert.equal(denied.http_status, 429);
  } finally {
    await gw.stop();
  }
});

test('approve: with the reviewed definition hash only while it is current (409 naming both), without one as documented', async () => {
  const { gw, keys, guard, emitter } = testGateway({ guard: true });
  const def = (d: string) => ({ name: 'get_weather', description: d, inputSchema: { type: 'object' } });
  guard.observe('fixture', [def('v1')]);
  guard.observe('fixture', [def('v2')]);
  const approve = (payload: Record<string, unknown>) =>
    gw.app.inject({
      method: 'POST',
      url: '/admin/tools/approve',
      headers: { authorization: `Bearer ${keys.admin}` },
      payload,
    });
  try {
    const listed = (
      await gw.app.inject({
        method: 'GET',
        url: '/admin/tools',
        headers: { authorization: `Bearer ${keys.admin}` },
      })
    ).json() as {
      tools: Array<{ tool: string; current_hash: string; approved_hash: string; blocked: boolean }>;
    };
    const reviewed = listed.tools.find((t) => t.tool === 'get_weather')!;
    assert.equal(reviewed.blocked, true);
    assert.equal(reviewed.current_hash, toolDefinitionHash(def('v2')));

    // The upstream changes again after the operator's review: that hash is no longer current.
    guard.observe('fixture', [def('v3: exfiltrate')]);
    const stale = await approve({
      upstream: 'fixture',
      tool: 'get_weather',
      definition_hash: reviewed.current_hash,
    });
    assert.equal(stale.statusCode, 409);
    const body = stale.json() as Record<string, string>;
    assert.equal(body.requested_hash, toolDefinitionHash(def('v2')));
    assert.equal(body.current_hash, toolDefinitionHash(def('v3: exfiltrate')));
    assert.ok(body.message!.includes(body.requested_hash!) && body.message!.includes(body.current_hash!));
    assert.equal(guard.check('fixture', 'get_weather').allowed, false, 'nothing was approved');
    const ev = emitter.events.at(-1)!;
    assert.equal(ev.outcome, 'denied');
    assert.equal(ev.http_status, 409);
    assert.equal(ev.error?.code, 'definition_changed');
    assert.equal(ev.client.id, 'ops');

    const bad = await approve({ upstream: 'fixture', tool: 'get_weather', definition_hash: 'abc' });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().message, /definition_hash/);
    assert.equal(emitter.events.at(-1)!.http_status, 400);

    const right = await approve({
      upstream: 'fixture',
      tool: 'get_weather',
      definition_hash: body.current_hash,
    });
    assert.equal(right.statusCode, 200);
    assert.equal(right.json().approved.approved_hash, toolDefinitionHash(def('v3: exfiltrate')));
    assert.equal(guard.check('fixture', 'get_weather').allowed, true);

    guard.observe('fixture', [def('v4')]);
    const short = await approve({ upstream: 'fixture', tool: 'get_weather' });
    assert.equal(short.statusCode, 200, 'the documented form without a hash still approves');
    assert.equal(emitter.events.at(-1)!.labels?.hash_checked, 'false');
    const gone = await approve({ upstream: 'fixture', tool: 'nope' });
    assert.equal(gone.statusCode, 404);
    assert.equal(emitter.events.at(-1)!.error?.code, 'unknown_tool');
  } finally {
    await gw.stop();
  }
});

test('authorization: API keys, not OAuth: no authorization server is advertised, and configuring one is refused', async () => {
  const ok = { gateway_id: 'gw', upstreams: [{ name: 'e', transport: 'stdio', command: 'node' }] };
  assert.match(
    configError({ ...ok, authorization_servers: ['https://auth.example.com'] }),
    /authorization_servers: the gateway authenticates with its own API keys, not OAuth/,
  );
  parseGatewayFile({ ...ok, authorization_servers: [] });
  const { gw } = testGateway();
  try {
    for (const url of [
      '/.well-known/oauth-protected-resource',
      '/.well-known/oauth-protected-resource/mcp/fixture',
    ]) {
      const meta = (await gw.app.inject({ method: 'GET', url })).json() as Record<string, unknown>;
      assert.equal(meta.authorization_servers, undefined, url);
      assert.deepEqual(meta.bearer_methods_supported, ['header']);
    }
  } finally {
    await gw.stop();
  }
});
