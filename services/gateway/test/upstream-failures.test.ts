import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { resolveHeaderValues } from '../src/config.js';
import { RPC_UPSTREAM_UNAVAILABLE } from '../src/mcp-proxy.js';
import { createUpstreamConnector } from '../src/upstreams.js';
import { fixtureUpstream, initializeRequest, log, mcpHeaders, testGateway, until } from './helpers.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const text = (r: unknown) => (r as { content: Array<{ text: string }> }).content[0]?.text ?? '';

async function connect(url: string, key: string) {
  const client = new Client({ name: 'failures-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  return { client, transport };
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

test('upstream that cannot start (stdio): 502 with JSON-RPC -32050, an audited error event, no session', async () => {
  const broken = { ...fixtureUpstream('broken'), command: '/nonexistent/mcp-server-binary' };
  const { gw, keys, emitter, connects } = testGateway({ upstreams: [broken] });
  try {
    const res = await gw.app.inject({
      method: 'POST',
      url: '/mcp/broken',
      headers: { ...mcpHeaders(keys.user), 'user-agent': 'failures-test/1.0' },
      payload: initializeRequest(7),
    });
    assert.equal(res.statusCode, 502);
    assert.deepEqual(res.json().error, {
      code: RPC_UPSTREAM_UNAVAILABLE,
      message: 'upstream "broken" is unavailable',
    });
    assert.equal(connects(), 1);
    assert.equal(gw.sessions.size, 0);
    const ev = await until(() => emitter.events.find((e) => e.method === 'initialize'), 'initialize event');
    assert.equal(ev.method, 'initialize');
    assert.equal(ev.kind, 'session');
    assert.equal(ev.outcome, 'error');
    assert.equal(ev.http_status, 502);
    assert.equal(ev.rpc_error_code, RPC_UPSTREAM_UNAVAILABLE);
    assert.equal(ev.error?.code, 'upstream_unavailable');
    assert.equal(ev.client.id, 'alice');
    assert.equal(ev.client.user_agent, 'failures-test/1.0');
    assert.deepEqual(ev.server, { name: 'broken', version: undefined, transport: 'stdio' });
    assert.equal(ev.labels?.refused_by, 'gateway');
  } finally {
    await gw.stop();
  }
});

test('HTTP upstream not reachable: the client gets JSON-RPC -32050, the request is audited, the session ends', async () => {
  const url = `http://127.0.0.1:${await closedPort()}/mcp`;
  const { gw, keys, emitter } = testGateway({
    upstreams: [{ name: 'gone', transport: 'http', url, headers: {} }],
  });
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    await assert.rejects(
      connect(`${base}/mcp/gone`, keys.user),
      (err: { code?: number; message?: string }) =>
        err.code === RPC_UPSTREAM_UNAVAILABLE && /upstream "gone" is unavailable/.test(err.message ?? ''),
    );
    const ev = await until(() => emitter.events.find((e) => e.method === 'initialize'), 'initialize event');
    assert.equal(ev.outcome, 'error');
    assert.equal(ev.rpc_error_code, RPC_UPSTREAM_UNAVAILABLE);
    assert.equal(ev.error?.code, 'upstream_unavailable');
    assert.equal(ev.server.transport, 'http');
    await until(() => gw.sessions.size === 0, 'the failed session to close');
  } finally {
    await gw.stop();
  }
});

test('limits.max_sessions: the next initialize gets 503 + Retry-After and a denied event, no upstream; a freed slot admits again', async () => {
  const { gw, keys, emitter, connects } = testGateway({ limits: { max_sessions: 1 } });
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const first = await connect(`${base}/mcp/fixture`, keys.user);
    assert.equal(gw.sessions.size, 1);
    const res = await gw.app.inject({
      method: 'POST',
      url: '/mcp/fixture',
      headers: mcpHeaders(keys.admin),
      payload: initializeRequest(2),
    });
    assert.equal(res.statusCode, 503);
    assert.equal(res.headers['retry-after'], '30');
    assert.equal(res.json().error.code, RPC_UPSTREAM_UNAVAILABLE);
    assert.match(res.json().error.message, /too many open sessions \(limits\.max_sessions = 1\)/);
    assert.equal(connects(), 1, 'no upstream was started for the refused session');
    const ev = await until(
      () => emitter.events.find((e) => e.method === 'initialize' && e.outcome === 'denied'),
      'the denied initialize event',
    );
    assert.equal(ev.method, 'initialize');
    assert.equal(ev.outcome, 'denied');
    assert.equal(ev.http_status, 503);
    assert.equal(ev.error?.code, 'too_many_sessions');
    assert.equal(ev.client.id, 'ops');

    // DELETE ends the first session (and its upstream child); the slot is free again.
    await first.transport.terminateSession();
    await first.client.close();
    await until(() => gw.sessions.size === 0, 'the deleted session to close');
    const second = await connect(`${base}/mcp/fixture`, keys.admin);
    assert.equal(
      text(await second.client.callTool({ name: 'echo', arguments: { message: 'in' } })),
      'fixture echo: in',
    );
    await second.client.close();
  } finally {
    await gw.stop();
  }
});

test('idle sweep: sessions silent for longer than limits.session_idle_ms are closed, active ones kept', async () => {
  let t = Date.now();
  const { gw, keys } = testGateway({ limits: { session_idle_ms: 60_000 }, now: () => t });
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const idle = await connect(`${base}/mcp/fixture`, keys.user);
    const busy = await connect(`${base}/mcp/fixture`, keys.user);
    assert.equal(gw.sessions.size, 2);
    t += 40_000;
    await busy.client.callTool({ name: 'echo', arguments: { message: 'still here' } });
    t += 30_000; // idle: 70 s without a message; busy: 30 s
    assert.equal(await gw.sweep(), 1);
    assert.deepEqual([...gw.sessions.keys()], [busy.transport.sessionId]);
    assert.equal(await gw.sweep(), 0, 'nothing else is idle');
    // The swept session is gone for its client; the other one keeps working.
    await assert.rejects(
      idle.client.callTool({ name: 'echo', arguments: { message: 'late' } }),
      /404|Session not found/,
    );
    assert.equal(
      text(await busy.client.callTool({ name: 'echo', arguments: { message: 'ok' } })),
      'fixture echo: ok',
    );
    await idle.client.close().catch(() => undefined);
    await busy.client.close();
  } finally {
    await gw.stop();
  }
});

/**
 * A real SDK server over Streamable HTTP that insists on a credential of its own, as a hosted MCP
 * server does. It records the headers of every request it gets.
 */
async function securedUpstream(token: string, o: { json?: boolean } = {}) {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = new McpServer({ name: 'secured-upstream', version: '2.0.0' });
  server.registerTool(
    'add',
    { description: 'Adds two numbers.', inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }),
  );
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: randomUUID,
    enableJsonResponse: o.json ?? false,
  });
  await server.connect(transport);
  const httpServer = http.createServer((req, res) => {
    seen.push(req.headers);
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
      return;
    }
    void transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/mcp`,
    seen,
    async close() {
      await server.close();
      httpServer.closeAllConnections();
      await new Promise((r) => httpServer.close(r));
    },
  };
}

test('HTTP upstream headers: env:NAME values are resolved and sent with every upstream request (SSE and JSON upstreams)', async () => {
  const token = `upstream-token-${randomUUID()}`;
  const sse = await securedUpstream(token);
  const json = await securedUpstream(token, { json: true });
  const headers = { authorization: 'env:GW_TEST_UPSTREAM_TOKEN', 'x-gateway': 'mcp-audit' };
  const upstreams = [
    { name: 'secured-sse', transport: 'http' as const, url: sse.url, headers },
    { name: 'secured-json', transport: 'http' as const, url: json.url, headers },
  ];
  // What main.ts does at boot: resolve every HTTP upstream's header values from the environment.
  const env = { GW_TEST_UPSTREAM_TOKEN: `Bearer ${token}` };
  const resolved = Object.fromEntries(upstreams.map((u) => [u.name, resolveHeaderValues(u.headers, env)]));
  const { gw, keys, emitter } = testGateway({
    upstreams,
    connect: createUpstreamConnector({ log, headers: resolved }),
  });
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    for (const [name, up] of [
      ['secured-sse', sse],
      ['secured-json', json],
    ] as const) {
      const { client } = await connect(`${base}/mcp/${name}`, keys.user);
      assert.equal(text(await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } })), '42');
      await client.close();
      assert.ok(up.seen.length >= 3, `${name}: initialize, initialized, tools/call`);
      for (const h of up.seen) {
        assert.equal(h.authorization, `Bearer ${token}`, `${name}: the upstream's own credential`);
        assert.equal(h['x-gateway'], 'mcp-audit');
      }
      // The client's gateway key never travels upstream.
      assert.ok(up.seen.every((h) => !JSON.stringify(h).includes(keys.user)));
      const call = await until(
        () => emitter.events.find((e) => e.kind === 'tool_call' && e.server.name === name),
        `${name} tool_call event`,
      );
      assert.equal(call.outcome, 'ok');
      assert.equal(call.server.version, '2.0.0');
    }
  } finally {
    await gw.stop();
    await sse.close();
    await json.close();
  }
});

test('HTTP upstream headers: an env:NAME that is not set stops the gateway at boot, naming header and variable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-headers-'));
  const config = join(dir, 'gateway.json');
  writeFileSync(
    config,
    JSON.stringify({
      gateway_id: 'gw-headers-test',
      upstreams: [
        {
          name: 'secured',
          transport: 'http',
          url: 'http://127.0.0.1:9/mcp',
          headers: { authorization: 'env:GW_TEST_UNSET_TOKEN' },
        },
      ],
    }),
  );
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', MCP_AUDIT_GATEWAY_CONFIG: config, MCP_AUDIT_SDK_SINK: 'kafka' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 1);
  assert.match(stderr, /upstream header authorization refers to GW_TEST_UNSET_TOKEN, which is not set/);
});
