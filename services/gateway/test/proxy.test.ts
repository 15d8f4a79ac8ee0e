import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { RPC_RATE_LIMITED, RPC_TOOL_NOT_APPROVED } from '../src/mcp-proxy.js';
import { fixtureUpstream, testGateway, until } from './helpers.js';

async function connect(url: string, key: string) {
  const client = new Client({ name: 'proxy-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { authorization: `Bearer ${key}`, 'user-agent': 'proxy-test/1.0' } },
  });
  await client.connect(transport);
  return { client, transport };
}

const text = (r: unknown) => (r as { content: Array<{ text: string }> }).content[0]?.text ?? '';

test('SDK client → gateway (HTTP) → real SDK server (stdio): transparent, audited, rug-pull guarded', async () => {
  const { gw, keys, emitter, guard } = testGateway({ guard: true });
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const { client } = await connect(`${base}/mcp/fixture`, keys.user);
    const listed = await client.listTools();
    assert.deepEqual(listed.tools.map((t) => t.name).sort(), ['echo', 'get_weather', 'rug_pull']);
    const ok = await client.callTool({ name: 'get_weather', arguments: { city: 'Oslo' } });
    assert.equal(text(ok), 'sunny in Oslo');

    // NOTE: the gateway audits after forwarding (next turn of the event loop): wait for the event.
    const call = await until(
      () => emitter.events.find((e) => e.kind === 'tool_call' && e.tool?.name === 'get_weather'),
      'the tool_call event',
    );
    assert.equal(call.client.id, 'alice');
    assert.equal(call.client.user, 'alice@example.com');
    assert.equal(call.client.agent, 'proxy-test');
    assert.equal(call.client.user_agent, 'proxy-test/1.0');
    assert.ok(call.client.session_id);
    assert.deepEqual(call.server, { name: 'fixture', version: '1.0.0', transport: 'stdio' });
    assert.equal(call.outcome, 'ok');
    assert.equal(call.http_status, 200);
    assert.deepEqual(call.args, { city: 'Oslo' });
    assert.equal(call.tool?.definition_hash, guard.hashOf('fixture', 'get_weather'));
    assert.ok(call.request_bytes > 20 && call.response_bytes > 20);
    assert.match(call.response_digest ?? '', /^[0-9a-f]{64}$/);
    assert.ok(emitter.events.some((e) => e.method === 'initialize' && e.kind === 'session'));
    assert.ok(emitter.events.some((e) => e.method === 'tools/list' && e.kind === 'tool_list'));

    // The server changes the tool; its list_changed notification passes through the gateway.
    const listChanged = new Promise<void>((resolve) =>
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()),
    );
    await client.callTool({ name: 'rug_pull', arguments: {} });
    await listChanged;
    const relisted = await client.listTools();
    assert.match(relisted.tools.find((t) => t.name === 'get_weather')!.description!, /id_rsa/);
    const change = await until(
      () => emitter.events.find((e) => e.labels?.change === 'definition_changed'),
      'the definition change event',
    );
    assert.equal(change.kind, 'tool_list');
    assert.equal(change.tool?.name, 'get_weather');
    assert.equal(change.labels?.guard, 'blocked');
    assert.match(change.labels?.previous_hash ?? '', /^[0-9a-f]{64}$/);
    assert.notEqual(change.labels?.previous_hash, change.tool?.definition_hash);

    // Guarded: the call is refused with a JSON-RPC error and audited as denied.
    await assert.rejects(
      client.callTool({ name: 'get_weather', arguments: { city: 'Oslo' } }),
      (err: { code?: number; message?: string }) =>
        err.code === RPC_TOOL_NOT_APPROVED && /re-approval/.test(err.message ?? ''),
    );
    const denied = await until(
      () => emitter.events.find((e) => e.outcome === 'denied' && e.tool?.name === 'get_weather'),
      'the denied event',
    );
    assert.equal(denied.outcome, 'denied');
    assert.equal(denied.tool?.name, 'get_weather');
    assert.equal(denied.rpc_error_code, RPC_TOOL_NOT_APPROVED);

    // An operator approves the new definition through the admin endpoint; calls pass again.
    const before = await fetch(`${base}/admin/tools`, { headers: { authorization: `Bearer ${keys.admin}` } });
    const blocked = ((await before.json()) as { tools: Array<{ tool: string; blocked: boolean }> }).tools;
    assert.equal(blocked.find((t) => t.tool === 'get_weather')?.blocked, true);
    const approve = await fetch(`${base}/admin/tools/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ upstream: 'fixture', tool: 'get_weather' }),
    });
    assert.equal(approve.status, 200);
    assert.equal(
      text(await client.callTool({ name: 'get_weather', arguments: { city: 'Rome' } })),
      'sunny in Rome',
    );
    await client.close();
  } finally {
    await gw.stop();
  }
});

test('rate limit per client: refused requests get 429 + a JSON-RPC error and a denied event', async () => {
  const { gw, keys, emitter } = testGateway({ rate: { per_second: 0.001, burst: 4 } });
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const { client } = await connect(`${base}/mcp/fixture`, keys.user);
    // initialize took one token; three more pass, the next is refused.
    for (let i = 0; i < 3; i++) await client.callTool({ name: 'echo', arguments: { message: `m${i}` } });
    await assert.rejects(
      client.callTool({ name: 'echo', arguments: { message: 'over' } }),
      /429|rate limit/i,
    );
    const refused = await until(
      () => emitter.events.find((e) => e.outcome === 'denied' && e.http_status === 429),
      'the rate-limited event',
    );
    assert.equal(refused.outcome, 'denied');
    assert.equal(refused.http_status, 429);
    assert.equal(refused.rpc_error_code, RPC_RATE_LIMITED);
    assert.equal(refused.tool?.name, 'echo');
    assert.equal(refused.client.id, 'alice');
    // Another client has its own bucket.
    const other = await connect(`${base}/mcp/fixture`, keys.admin);
    assert.equal(
      text(await other.client.callTool({ name: 'echo', arguments: { message: 'hi' } })),
      'fixture echo: hi',
    );
    await other.client.close();
    await client.close().catch(() => undefined);
  } finally {
    await gw.stop();
  }
});

test('shadowing: two upstreams exposing the same tool name are reported', async () => {
  const { gw, keys, emitter } = testGateway({ upstreams: [fixtureUpstream('one'), fixtureUpstream('two')] });
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    for (const name of ['one', 'two']) {
      const { client } = await connect(`${base}/mcp/${name}`, keys.user);
      await client.listTools();
      await client.close();
    }
    const shadowing = () => emitter.events.filter((e) => e.labels?.change === 'shadowing');
    const shadow = await until(() => (shadowing().length >= 3 ? shadowing() : undefined), 'shadowing events');
    assert.deepEqual(shadow.map((e) => e.tool?.name).sort(), ['echo', 'get_weather', 'rug_pull']);
    assert.equal(shadow[0]!.labels?.upstreams, 'one,two');
  } finally {
    await gw.stop();
  }
});

test('sessions belong to their client: another key cannot use a session id', async () => {
  const { gw, keys, connects } = testGateway();
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const { client, transport } = await connect(`${base}/mcp/fixture`, keys.user);
    const res = await fetch(`${base}/mcp/fixture`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${keys.admin}`,
        'mcp-session-id': transport.sessionId!,
        'mcp-protocol-version': '2025-06-18',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
    });
    assert.equal(res.status, 404);
    assert.equal(connects(), 1);
    await client.close();
  } finally {
    await gw.stop();
  }
});

test('cancellation: an aborted callTool sends notifications/cancelled through the gateway; the upstream aborts; the call is audited', async () => {
  const { gw, keys, emitter } = testGateway({
    upstreams: [fixtureUpstream('fixture', { FIXTURE_CANCELLABLE: '1' })],
  });
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const { client } = await connect(`${base}/mcp/fixture`, keys.user);
    const ac = new AbortController();
    let started!: () => void;
    const inFlight = new Promise<void>((resolve) => (started = resolve));
    const call = client.callTool({ name: 'wait_for_cancel', arguments: {} }, undefined, {
      signal: ac.signal,
      // The upstream's first progress notification (through the gateway) says the tool is running.
      onprogress: () => started(),
    });
    await inFlight;
    ac.abort('user gave up');
    await assert.rejects(call, /user gave up/);

    // The upstream itself saw the abort, with the client's reason: the notification passed through.
    const seen = await until(async () => {
      const r = text(await client.callTool({ name: 'cancellations', arguments: {} }));
      return r === '[]' ? undefined : (JSON.parse(r) as Array<{ reason: string }>);
    }, 'the upstream to observe the cancellation');
    assert.deepEqual(seen, [{ reason: 'user gave up' }]);

    const ev = await until(
      () => emitter.events.find((e) => e.kind === 'tool_call' && e.tool?.name === 'wait_for_cancel'),
      'the cancelled call event',
    );
    assert.equal(ev.outcome, 'error');
    assert.equal(ev.error?.code, 'cancelled');
    assert.equal(ev.error?.message, 'user gave up');
    assert.equal(ev.client.id, 'alice');
    assert.equal(ev.http_status, 200);
    assert.equal(ev.response_bytes, 0, 'no response: the cancelled request is never answered');
    // The upstream's late answer (the SDK server drops it for an aborted request) produced no
    // second event.
    assert.equal(emitter.events.filter((e) => e.tool?.name === 'wait_for_cancel').length, 1);
    await client.close();
  } finally {
    await gw.stop();
  }
});

test('annotations: one tool_list event per listed tool with its hash and annotations as returned; calls carry them', async () => {
  const { gw, keys, emitter, guard } = testGateway({ guard: false });
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const { client } = await connect(`${base}/mcp/fixture`, keys.user);
    const listed = await client.listTools();
    const listing = () => emitter.events.filter((e) => e.kind === 'tool_list' && e.method === 'tools/list');
    const first = await until(
      () => (listing().length >= 1 + listed.tools.length ? listing() : undefined),
      'the listing events',
    );
    assert.equal(first.length, 1 + listed.tools.length, 'the request event plus one per listed tool');
    assert.equal(first.filter((e) => e.tool === undefined).length, 1);
    for (const t of listed.tools) {
      const e = first.find((x) => x.tool?.name === t.name);
      assert.ok(e, t.name);
      assert.equal(e.tool?.definition_hash, guard.hashOf('fixture', t.name));
      assert.deepEqual(e.tool?.annotations, t.annotations, `${t.name}: annotations as returned`);
      assert.equal(e.client.session_id, first[0]!.client.session_id);
    }
    assert.deepEqual(first.find((e) => e.tool?.name === 'get_weather')?.tool?.annotations, {
      title: 'Weather',
      readOnlyHint: true,
      openWorldHint: true,
    });
    assert.equal(first.find((e) => e.tool?.name === 'echo')?.tool?.annotations, undefined, 'unannotated');

    await client.callTool({ name: 'get_weather', arguments: { city: 'Oslo' } });
    await client.callTool({ name: 'echo', arguments: { message: 'hi' } });
    const call = (name: string) =>
      emitter.events.filter((e) => e.kind === 'tool_call' && e.tool?.name === name);
    const weather = await until(() => call('get_weather')[0], 'the get_weather call');
    assert.deepEqual(weather.tool?.annotations, {
      title: 'Weather',
      readOnlyHint: true,
      openWorldHint: true,
    });
    assert.equal((await until(() => call('echo')[0], 'the echo call')).tool?.annotations, undefined);

    // The server turns the tool destructive: the next listing and calls say so.
    const listChanged = new Promise<void>((resolve) =>
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()),
    );
    await client.callTool({ name: 'rug_pull', arguments: {} });
    await listChanged;
    await client.listTools();
    const changed = await until(
      () => emitter.events.find((e) => e.labels?.change === 'definition_changed'),
      'the relisted get_weather',
    );
    assert.equal(changed.tool?.name, 'get_weather');
    assert.equal(changed.tool?.annotations?.destructiveHint, true);
    assert.equal(
      emitter.events.filter((e) => e.method === 'tools/list' && e.tool?.name === 'get_weather').length,
      2,
      'one event per listing, the change labelled on it',
    );
    await client.callTool({ name: 'get_weather', arguments: { city: 'Oslo' } });
    const second = await until(() => call('get_weather')[1], 'the second get_weather call');
    assert.equal(second.tool?.annotations?.destructiveHint, true);
    assert.equal(second.tool?.annotations?.readOnlyHint, false);
  } finally {
    await gw.stop();
  }
});
