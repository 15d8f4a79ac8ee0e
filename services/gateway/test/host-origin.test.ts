import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { EventDraft } from '../src/audit-events.js';
import { parseGatewayFile } from '../src/config.js';
import { initializeRequest, mcpHeaders, testGateway, until } from './helpers.js';

/**
 * DNS rebinding: a web page on evil.example whose name now resolves to 127.0.0.1 reaches the
 * gateway with `Host: evil.example:9473` and `Origin: http://evil.example`. The MCP transport spec
 * requires Origin validation (403 when present and invalid); the SDK's own protection answers a
 * bad Host or Origin with 403 and JSON-RPC -32000, and the gateway does the same.
 */

const refusal = (events: EventDraft[], code: string) =>
  until(() => events.find((e) => e.error?.code === code), `the ${code} event`);

async function post(gw: ReturnType<typeof testGateway>['gw'], key: string, headers: Record<string, string>) {
  return gw.app.inject({
    method: 'POST',
    url: '/mcp/fixture',
    headers: { ...mcpHeaders(key), 'user-agent': 'rebind/1.0', ...headers },
    payload: initializeRequest(),
  });
}

test('an Origin that is not allowed is refused with 403 before anything else, and audited', async () => {
  const { gw, keys, emitter, connects } = testGateway();
  try {
    for (const origin of ['http://evil.example', 'null', 'http://127.0.0.1.evil.example:9473']) {
      const r = await post(gw, keys.user, { origin });
      assert.equal(r.statusCode, 403, origin);
      assert.equal(r.json().error.code, -32000);
      assert.match(r.json().error.message, /^Invalid Origin header/);
    }
    // Refused before authentication: a page cannot even probe keys from a foreign origin.
    const noKey = await gw.app.inject({
      method: 'GET',
      url: '/mcp/fixture',
      headers: { origin: 'http://evil.example', accept: 'text/event-stream' },
    });
    assert.equal(noKey.statusCode, 403);
    const e = await refusal(emitter.events, 'origin_not_allowed');
    assert.equal(e.outcome, 'denied');
    assert.equal(e.http_status, 403);
    assert.equal(e.rpc_error_code, -32000);
    assert.equal(e.kind, 'session');
    assert.equal(e.method, 'http:POST');
    assert.equal(e.client.ip, '127.0.0.1');
    assert.equal(e.client.user_agent, 'rebind/1.0');
    assert.deepEqual(e.server, { name: 'fixture', transport: 'stdio' });
    assert.equal(e.labels?.refused_by, 'gateway');
    assert.equal(e.labels?.origin, 'http://evil.example');
    assert.equal(emitter.events.filter((x) => x.error?.code === 'origin_not_allowed').length, 4);
    assert.equal(connects(), 0, 'no upstream session was opened');
  } finally {
    await gw.stop();
  }
});

test('a Host that is not the gateway is refused with 403 and audited', async () => {
  const { gw, keys, emitter, connects } = testGateway();
  try {
    for (const host of ['evil.example:9473', 'evil.example', 'localhost.evil.example']) {
      const r = await post(gw, keys.user, { host });
      assert.equal(r.statusCode, 403, host);
      assert.match(r.json().error.message, /^Invalid Host header/);
    }
    const e = await refusal(emitter.events, 'host_not_allowed');
    assert.equal(e.outcome, 'denied');
    assert.equal(e.http_status, 403);
    assert.equal(e.labels?.host, 'evil.example:9473');
    assert.equal(connects(), 0);
  } finally {
    await gw.stop();
  }
});

test('by default: no Origin, loopback origins and loopback or bound Host names pass', async () => {
  const { gw, keys, emitter } = testGateway();
  try {
    const cases: Array<Record<string, string>> = [
      {},
      { origin: 'http://localhost:5173' },
      { origin: 'http://127.0.0.1:9473' },
      { origin: 'http://[::1]:8080' },
      { host: '127.0.0.1:9473' },
      { host: '[::1]:9473' },
      { host: 'LOCALHOST:9473' },
    ];
    for (const h of cases) {
      const r = await post(gw, keys.user, h);
      assert.equal(r.statusCode, 200, `${JSON.stringify(h)}: ${r.body}`);
    }
    assert.ok(!emitter.events.some((e) => e.error?.code?.toString().endsWith('_not_allowed')));
  } finally {
    await gw.stop();
  }
});

test('bound to all interfaces, a loopback Origin is no longer enough', async () => {
  const { gw, keys } = testGateway({ host: '0.0.0.0' });
  try {
    const r = await post(gw, keys.user, { origin: 'http://localhost:5173' });
    assert.equal(r.statusCode, 403);
    // Host names stay loopback or the address itself, which DNS cannot rebind.
    const plain = await post(gw, keys.user, {});
    assert.equal(plain.statusCode, 200, plain.body);
  } finally {
    await gw.stop();
  }
});

test('allowed_hosts and allowed_origins in the gateway file replace the defaults', async () => {
  const { gw, keys } = testGateway({
    file: {
      allowed_hosts: ['mcp.example.com', 'gw.internal:8443'],
      allowed_origins: ['https://app.example.com'],
    },
  });
  try {
    assert.equal((await post(gw, keys.user, { host: 'mcp.example.com' })).statusCode, 200);
    assert.equal((await post(gw, keys.user, { host: 'MCP.example.com:443' })).statusCode, 200);
    assert.equal((await post(gw, keys.user, { host: 'gw.internal:8443' })).statusCode, 200);
    assert.equal((await post(gw, keys.user, { host: 'gw.internal:9999' })).statusCode, 403);
    assert.equal((await post(gw, keys.user, { host: 'localhost:80' })).statusCode, 403);
    const h = { host: 'mcp.example.com' };
    assert.equal((await post(gw, keys.user, { ...h, origin: 'https://app.example.com' })).statusCode, 200);
    assert.equal((await post(gw, keys.user, { ...h, origin: 'http://localhost:5173' })).statusCode, 403);
    assert.equal(
      (await post(gw, keys.user, { ...h, origin: 'https://app.example.com.evil' })).statusCode,
      403,
    );
  } finally {
    await gw.stop();
  }
});

test('the gateway file refuses malformed entries, naming the field', () => {
  const base = { gateway_id: 'g', upstreams: [{ name: 'u', transport: 'stdio', command: 'x' }] };
  assert.throws(
    () => parseGatewayFile({ ...base, allowed_origins: ['app.example.com'] }),
    /allowed_origins\.0/,
  );
  assert.throws(() => parseGatewayFile({ ...base, allowed_hosts: ['http://x/'] }), /allowed_hosts\.0/);
  const ok = parseGatewayFile({ ...base, allowed_origins: ['HTTPS://App.Example.com/'] });
  assert.deepEqual(ok.allowed_origins, ['https://app.example.com']);
});

test('over a socket: the SDK client works, a rebinding Host gets 403', async () => {
  const { gw, keys } = testGateway();
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const client = new Client({ name: 'origin-test', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${base}/mcp/fixture`), {
        requestInit: { headers: { authorization: `Bearer ${keys.user}` } },
      }),
    );
    assert.ok((await client.listTools()).tools.length > 0);
    await client.close();
    const port = Number(new URL(base).port);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/mcp/fixture',
          method: 'POST',
          headers: { ...mcpHeaders(keys.user), host: `evil.example:${port}` },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(initializeRequest()));
    });
    assert.equal(status, 403);
  } finally {
    await gw.stop();
  }
});
