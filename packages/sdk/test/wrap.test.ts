import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  type JSONRPCMessage,
} from '@modelcontextprotocol/sdk/types.js';
import { parseEvent } from '@mcp-audit/schema';
import { createLogger } from '@mcp-audit/service-kit';
import {
  auditMcpServer,
  createAuditEmitter,
  DROPPED_METHOD,
  IN_FLIGHT_LIMIT_REASON,
  toolDefinitionHash,
  type AuditEvent,
} from '../src/index.js';
import { MemorySink } from './memory-sink.js';
import { until } from './util.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const silent = createLogger('sdk-test', { level: 'silent' });

function emitter(sink: MemorySink, sourceId = 'sdk-wrap-test') {
  return createAuditEmitter({
    sink,
    source: { type: 'sdk', id: sourceId, version: '9.9.9' },
    redactionKey: 'unit-test-redaction-key-0123456789',
    flushIntervalMs: 5,
    logger: silent,
  });
}

/** Every response the client received, by request id, exactly as the server sent it. */
function tapResponses(transport: InMemoryTransport): Map<string | number, Record<string, unknown>> {
  const seen = new Map<string | number, Record<string, unknown>>();
  const prev = transport.onmessage;
  transport.onmessage = (m: JSONRPCMessage, extra) => {
    const r = m as { id?: string | number; result?: unknown; error?: unknown };
    if (r.id !== undefined && (r.result !== undefined || r.error !== undefined)) seen.set(r.id, r);
    prev?.(m, extra);
  };
  return seen;
}

function buildMcpServer(): McpServer {
  const server = new McpServer({ name: 'notes', version: '2.0.0' });
  server.registerTool(
    'echo',
    { description: 'Echo the text back', inputSchema: { text: z.string(), api_key: z.string().optional() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  server.registerTool('fail', { description: 'Always fails' }, async () => {
    throw new Error('disk on fire');
  });
  server.registerResource('readme', 'notes://readme', { description: 'The readme' }, async (uri) => ({
    contents: [{ uri: uri.href, text: 'hello' }],
  }));
  server.registerPrompt('greet', { description: 'Greet', argsSchema: { who: z.string() } }, ({ who }) => ({
    messages: [{ role: 'user', content: { type: 'text', text: `hi ${who}` } }],
  }));
  return server;
}

const valid = (e: AuditEvent) => {
  const r = parseEvent(JSON.stringify(e));
  assert.ok(r.ok, r.ok ? '' : r.reason);
};

describe('auditMcpServer with McpServer over InMemoryTransport', () => {
  it('emits session, tool_list, tool_call, resource_read and prompt_get events with the outcome layers apart', async () => {
    const sink = new MemorySink();
    const audit = emitter(sink);
    const server = auditMcpServer(buildMcpServer(), { emitter: audit, sourceId: 'sdk-wrap-test' });
    assert.equal(server.audit, audit);
    const [clientT, serverT] = InMemoryTransport.createLinkedPair();
    await server.connect(serverT);
    const client = new Client({ name: 'test-client', version: '1.0.0' });
    await client.connect(clientT);
    const wire = tapResponses(clientT);

    const listed = await client.listTools();
    const ok = await client.callTool({
      name: 'echo',
      arguments: { text: 'hi', api_key: 'sk-live-abcdef0123456789' },
    });
    const failed = await client.callTool({ name: 'fail', arguments: {} });
    const unknown = await client.callTool({ name: 'nope', arguments: {} });
    await client.readResource({ uri: 'notes://readme' });
    await client.getPrompt({ name: 'greet', arguments: { who: 'ann' } });
    await assert.rejects(client.getPrompt({ name: 'missing' }), /not found/);
    await client.ping();
    assert.equal(ok.isError, undefined);
    assert.equal(failed.isError, true);
    assert.equal(unknown.isError, true);

    await audit.flush();
    const events = sink.events;
    events.forEach(valid);
    const byMethod = (m: string) => events.filter((e) => e.method === m);

    const [session] = byMethod('initialize');
    assert.ok(session);
    assert.equal(session.kind, 'session');
    assert.equal(session.outcome, 'ok');
    assert.deepEqual(session.source, { type: 'sdk', id: 'sdk-wrap-test', version: '9.9.9' });
    assert.deepEqual(session.server, { name: 'notes', version: '2.0.0', transport: 'stdio' });
    assert.equal(session.client.id, 'anonymous', 'no authentication: no identity is made up');
    assert.equal(session.client.agent, 'test-client/1.0.0');
    assert.equal((session.args as { clientInfo?: { name?: string } }).clientInfo?.name, 'test-client');
    assert.match(session.labels?.['mcp.protocol_version'] ?? '', /^\d{4}-\d{2}-\d{2}$/);

    const allLists = byMethod('tools/list');
    assert.equal(allLists.length, 1 + listed.tools.length, 'the request event plus one per listed tool');
    const [request] = allLists.filter((e) => e.tool === undefined);
    assert.ok(request, 'the request event carries no tool');
    assert.equal(request.kind, 'tool_list');
    const lists = allLists.filter((e) => e.tool !== undefined);
    for (const t of listed.tools) {
      const e = lists.find((x) => x.tool?.name === t.name);
      assert.ok(e, t.name);
      assert.equal(e.kind, 'tool_list');
      assert.equal(e.tool?.definition_hash, toolDefinitionHash(t));
      assert.equal(e.labels?.['mcp.list_size'], String(listed.tools.length));
    }
    const listResponse = [...wire.values()].find((r) =>
      Array.isArray((r.result as { tools?: unknown })?.tools),
    )!;
    const listJson = JSON.stringify(listResponse.result);
    assert.equal(
      allLists.reduce((n, e) => n + e.response_bytes, 0),
      Buffer.byteLength(listJson),
      'the exchange size is counted once',
    );
    assert.equal(request.response_bytes, Buffer.byteLength(listJson), 'on the request event');
    for (const e of allLists) assert.equal(e.response_digest, sha(listJson));

    const calls = byMethod('tools/call');
    assert.equal(calls.length, 3);
    const [echo, fail, nope] = calls;
    const echoHash = toolDefinitionHash(listed.tools.find((t) => t.name === 'echo')!);
    assert.deepEqual(echo!.tool, { name: 'echo', definition_hash: echoHash });
    assert.equal(echo!.outcome, 'ok');
    assert.equal(echo!.tool_is_error, false);
    assert.equal(echo!.rpc_error_code, undefined);
    assert.equal(echo!.args?.text, 'hi');
    assert.match(String(echo!.args?.api_key), /^\[REDACTED:/, 'arguments redacted at the source');
    const echoWire = [...wire.values()].find((r) => JSON.stringify(r.result).includes('"text":"hi"'))!;
    assert.equal(echo!.response_digest, sha(JSON.stringify(echoWire.result)));
    assert.equal(echo!.response_bytes, Buffer.byteLength(JSON.stringify(echoWire.result)));
    assert.equal(
      echo!.request_bytes,
      Buffer.byteLength(
        JSON.stringify({ name: 'echo', arguments: { text: 'hi', api_key: 'sk-live-abcdef0123456789' } }),
      ),
    );
    assert.ok(!JSON.stringify(events).includes('sk-live-abcdef0123456789'));
    assert.ok(!JSON.stringify(echo).includes('"content"'), 'the result itself is never stored');

    assert.equal(fail!.outcome, 'error', 'isError: true is not ok');
    assert.equal(fail!.tool_is_error, true);
    assert.equal(fail!.rpc_error_code, undefined, 'no protocol error: the tool failed');
    assert.equal(nope!.tool?.name, 'nope');
    assert.equal(nope!.tool?.definition_hash, undefined, 'never listed: no hash');
    assert.equal(nope!.outcome, 'error');
    assert.equal(nope!.tool_is_error, true, 'McpServer answers an unknown tool with isError');

    const [read] = byMethod('resources/read');
    assert.equal(read!.kind, 'resource_read');
    assert.deepEqual(read!.args, { uri: 'notes://readme' });
    assert.equal(read!.outcome, 'ok');

    const prompts = byMethod('prompts/get');
    assert.equal(prompts.length, 2);
    assert.equal(prompts[0]!.kind, 'prompt_get');
    assert.deepEqual(prompts[0]!.args, { name: 'greet', arguments: { who: 'ann' } });
    assert.equal(prompts[1]!.outcome, 'error');
    assert.equal(prompts[1]!.rpc_error_code, ErrorCode.InvalidParams, 'JSON-RPC error layer');
    assert.equal(prompts[1]!.error?.code, ErrorCode.InvalidParams);
    assert.match(prompts[1]!.error?.message ?? '', /missing/);
    assert.equal(prompts[1]!.response_digest, undefined, 'no result, no digest');

    assert.equal(byMethod('ping').length, 0, 'methods outside the contract are not audited');
    assert.ok(
      events.every((e) => e.http_status === undefined),
      'no HTTP, no http_status',
    );
    for (const e of events) {
      assert.ok(Number.isInteger(e.duration_ms) && e.duration_ms >= 0);
      assert.equal(e.client.agent, 'test-client/1.0.0');
    }
    await client.close();
    await audit.close();
  });

  it('given a sink, creates the emitter; its drop report names the audited server', async () => {
    const sink = new MemorySink();
    sink.down = true;
    const server = auditMcpServer(buildMcpServer(), {
      sink,
      sourceId: 'sdk-wrap-own',
      emitterOptions: {
        capacity: 2,
        flushIntervalMs: 5,
        retryBackoffMs: { min: 5, max: 10 },
        logger: silent,
      },
    });
    const [clientT, serverT] = InMemoryTransport.createLinkedPair();
    await server.connect(serverT);
    const client = new Client({ name: 'c', version: '1' });
    await client.connect(clientT);
    for (let i = 0; i < 4; i++) await client.callTool({ name: 'echo', arguments: { text: `${i}` } });
    assert.equal(server.audit.stats().dropped, 3, 'initialize + 4 calls into a buffer of 2');
    sink.down = false;
    await until(() => server.audit.stats().dropReports === 1, 'the drop report');
    const report = sink.events.find((e) => e.method === 'notifications/mcp_audit/dropped')!;
    assert.deepEqual(report.server, { name: 'notes', version: '2.0.0', transport: 'stdio' });
    assert.equal(report.source.id, 'sdk-wrap-own');
    assert.equal(report.labels?.['mcp_audit.dropped_count'], '3');
    await client.close();
    await server.audit.close();
  });

  it('refuses to wrap twice and needs a source id and an emitter or sink', () => {
    const s = buildMcpServer();
    const audit = emitter(new MemorySink());
    assert.throws(() => auditMcpServer(s, { sourceId: '' }), /sourceId is required/);
    assert.throws(() => auditMcpServer(s, { sourceId: 'x' }), /emitter or a sink/);
    auditMcpServer(s, { sourceId: 'x', emitter: audit });
    assert.throws(() => auditMcpServer(s, { sourceId: 'x', emitter: audit }), /already audited/);
    assert.throws(
      () => auditMcpServer({} as McpServer, { sourceId: 'x', emitter: audit }),
      /McpServer or a Server/,
    );
  });
});

describe('auditMcpServer with the low-level Server', () => {
  function buildLowLevel(): Server {
    const server = new Server({ name: 'lowlevel', version: '0.3.0' }, { capabilities: { tools: {} } });
    const tools = [
      {
        name: 'add',
        description: 'Add numbers',
        inputSchema: { type: 'object' as const, properties: { a: { type: 'number' } } },
      },
      { name: 'slow', description: 'Waits until cancelled', inputSchema: { type: 'object' as const } },
    ];
    server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }));
    server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
      if (req.params.name === 'add') return { content: [{ type: 'text', text: '3' }] };
      if (req.params.name === 'slow') {
        await new Promise((resolve) => extra.signal.addEventListener('abort', resolve));
        return { content: [] };
      }
      throw new McpError(ErrorCode.InvalidParams, `unknown tool ${req.params.name}`);
    });
    return server;
  }

  it('audits a wrapped Server: ok, JSON-RPC error for an unknown tool, cancellation', async () => {
    const sink = new MemorySink();
    const audit = emitter(sink);
    const server = auditMcpServer(buildLowLevel(), {
      emitter: audit,
      sourceId: 'sdk-wrap-test',
      labels: { env: 'test' },
    });
    const [clientT, serverT] = InMemoryTransport.createLinkedPair();
    await server.connect(serverT);
    const client = new Client({ name: 'low-client', version: '0.1.0' });
    await client.connect(clientT);

    await client.listTools();
    await client.callTool({ name: 'add', arguments: { a: 1 } });
    await assert.rejects(client.callTool({ name: 'ghost', arguments: {} }), /unknown tool ghost/);
    const ac = new AbortController();
    const slow = client.callTool({ name: 'slow', arguments: {} }, undefined, { signal: ac.signal });
    await until(
      () =>
        (server as unknown as { _requestHandlerAbortControllers: Map<unknown, unknown> })
          ._requestHandlerAbortControllers.size > 0,
      'slow call in flight',
    );
    ac.abort('user gave up');
    await assert.rejects(slow);
    await until(() => audit.stats().sent + audit.stats().buffered >= 7, 'all events');
    await audit.flush();

    const events = sink.events;
    events.forEach(valid);
    assert.deepEqual(
      events.map((e) => `${e.method}:${e.tool?.name ?? ''}`),
      [
        'initialize:',
        'tools/list:',
        'tools/list:add',
        'tools/list:slow',
        'tools/call:add',
        'tools/call:ghost',
        'tools/call:slow',
      ],
    );
    const [, , , , add, ghost, cancelled] = events;
    assert.equal(add!.server.name, 'lowlevel');
    assert.equal(add!.outcome, 'ok');
    assert.equal(
      add!.tool?.definition_hash,
      toolDefinitionHash({
        name: 'add',
        description: 'Add numbers',
        inputSchema: { type: 'object', properties: { a: { type: 'number' } } },
      }),
    );
    assert.equal(add!.labels?.env, 'test');
    assert.equal(ghost!.outcome, 'error');
    assert.equal(ghost!.rpc_error_code, ErrorCode.InvalidParams);
    assert.equal(ghost!.tool_is_error, undefined, 'no tool result, so no tool layer');
    assert.equal(ghost!.tool?.name, 'ghost');
    assert.equal(cancelled!.outcome, 'error');
    assert.equal(cancelled!.error?.code, 'cancelled');
    await client.close();
    await audit.close();
  });

  it('requests past the in-flight limit are counted as dropped and reported, not silently unaudited', async () => {
    const sink = new MemorySink();
    const audit = emitter(sink);
    const server = auditMcpServer(buildLowLevel(), {
      emitter: audit,
      sourceId: 'sdk-wrap-test',
      maxInFlightPerConnection: 2,
    });
    const [clientT, serverT] = InMemoryTransport.createLinkedPair();
    await server.connect(serverT);
    const client = new Client({ name: 'c', version: '1' });
    await client.connect(clientT);
    await audit.flush();
    const ac = new AbortController();
    const slow = [1, 2, 3].map(() =>
      client
        .callTool({ name: 'slow', arguments: {} }, undefined, { signal: ac.signal })
        .catch(() => undefined),
    );
    await until(
      () =>
        (server as unknown as { _requestHandlerAbortControllers: Map<unknown, unknown> })
          ._requestHandlerAbortControllers.size === 3,
      'three slow calls in flight',
    );
    // The third is served but cannot be tracked: one event lost, counted, and reported while the
    // other two are still in flight (nothing else needs to be delivered to carry the report).
    assert.equal(audit.stats().dropped, 1);
    await until(() => audit.stats().dropReports === 1, 'the drop report');
    const report = sink.events.find((e) => e.method === DROPPED_METHOD)!;
    assert.equal(report.labels?.['mcp_audit.dropped_count'], '1');
    assert.equal(report.labels?.['mcp_audit.dropped_reason'], IN_FLIGHT_LIMIT_REASON);
    valid(report);
    ac.abort('done');
    await Promise.all(slow);
    await until(
      () => sink.events.filter((e) => e.tool?.name === 'slow').length === 2,
      'the two tracked calls',
    );
    assert.equal(audit.stats().dropped, 1);
    // Once the connection has room again, requests are tracked again.
    await client.callTool({ name: 'add', arguments: { a: 1 } });
    await until(() => sink.events.some((e) => e.tool?.name === 'add'), 'the add event');
    assert.throws(
      () => auditMcpServer(buildLowLevel(), { emitter: audit, sourceId: 'x', maxInFlightPerConnection: 0 }),
      /maxInFlightPerConnection/,
    );
    await client.close();
    await audit.close();
  });

  it('unanswered requests are accounted for when the connection closes', async () => {
    const sink = new MemorySink();
    const audit = emitter(sink);
    const server = auditMcpServer(buildLowLevel(), { emitter: audit, sourceId: 'sdk-wrap-test' });
    const [clientT, serverT] = InMemoryTransport.createLinkedPair();
    await server.connect(serverT);
    const client = new Client({ name: 'c', version: '1' });
    await client.connect(clientT);
    const pending = client.callTool({ name: 'slow', arguments: {} }).catch(() => undefined);
    await until(
      () =>
        (server as unknown as { _requestHandlerAbortControllers: Map<unknown, unknown> })
          ._requestHandlerAbortControllers.size > 0,
      'slow call in flight',
    );
    await server.close();
    await pending;
    await audit.flush();
    const slow = sink.events.find((e) => e.tool?.name === 'slow');
    assert.ok(slow);
    assert.equal(slow.error?.code, 'connection_closed');
    await audit.close();
  });
});

describe('auditMcpServer over Streamable HTTP with authentication', () => {
  it('takes the client identity from authInfo, never from client-supplied headers', async () => {
    const sink = new MemorySink();
    const audit = emitter(sink);
    const tokens = new Map<string, AuthInfo>([
      [
        'tok-alice-0123456789',
        {
          token: 'tok-alice-0123456789',
          clientId: 'client-alice',
          scopes: ['tools'],
          extra: { user: 'alice@example.com' },
        },
      ],
    ]);
    const server = auditMcpServer(buildMcpServer(), { emitter: audit, sourceId: 'sdk-wrap-test' });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => `sess-${Math.random().toString(36).slice(2)}`,
    });
    await server.connect(transport);
    const http = createServer((req: IncomingMessage & { auth?: AuthInfo }, res) => {
      const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
      const auth = m ? tokens.get(m[1]!) : undefined;
      if (!auth) {
        res.writeHead(401).end();
        return;
      }
      req.auth = auth;
      void transport.handleRequest(req, res);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const port = (http.address() as AddressInfo).port;
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const client = new Client({ name: 'http-client', version: '3.1.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`), {
        requestInit: {
          headers: {
            authorization: 'Bearer tok-alice-0123456789',
            'x-client-id': 'spoofed-admin',
            traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
          },
        },
      }),
    );
    try {
      await client.callTool({ name: 'echo', arguments: { text: 'over http' } });
      await audit.flush();
      const call = sink.events.find((e) => e.method === 'tools/call');
      assert.ok(call);
      valid(call);
      assert.equal(call.client.id, 'client-alice');
      assert.equal(call.client.user, 'alice@example.com');
      assert.equal(call.client.session_id, transport.sessionId);
      assert.ok(call.client.session_id?.startsWith('sess-'));
      assert.equal(call.client.agent, 'http-client/3.1.0');
      assert.deepEqual(call.auth, { method: 'oauth', result: 'success' });
      assert.equal(call.server.transport, 'http');
      assert.equal(
        call.http_status,
        200,
        'Streamable HTTP answers a request that reached the server with 200',
      );
      assert.ok(
        sink.events.every((e) => e.http_status === 200),
        'initialize and tools/call alike',
      );
      assert.equal(call.trace_id, traceId);
      assert.ok(!JSON.stringify(sink.events).includes('spoofed-admin'));
      assert.ok(
        !JSON.stringify(sink.events).includes('tok-alice-0123456789'),
        'the token never reaches an event',
      );
    } finally {
      await client.close();
      await server.close();
      await new Promise((r) => http.close(r));
      await audit.close();
    }
  });
});

describe('auditMcpServer with hostile text in requests', () => {
  // NOTE: the event contract refuses NUL and lone surrogates in every string and control
  // characters in identifiers; without sanitizing, each request below would fail validation and
  // be counted as invalid instead of audited.
  const NUL_ARGS = { text: 'a\u0000b', ['k\ud800']: 'c\udc00', nested: [{ ['\u0000']: 'x\ud83d' }] };
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  const NUL_OR_SURROGATE = /\u0000|\p{Cs}/u;
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  const CONTROL_OR_SURROGATE = /[\u0000-\u001f\u007f]|\p{Cs}/u;
  const HOSTILE_TOOL = `evil\u0000\u001b[2K\r\n\ud800${'x'.repeat(2000)}`;

  function buildRecording(): { server: Server; received: unknown[] } {
    const received: unknown[] = [];
    const server = new Server({ name: 'raw', version: '1.0.0' }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, async () => ({
      tools: [
        { name: 'take', inputSchema: { type: 'object' as const } },
        {
          name: 'bell\u0007tool',
          description: 'listed by the server',
          inputSchema: { type: 'object' as const },
        },
      ],
    }));
    server.setRequestHandler(CallToolRequestSchema, async (req) => {
      received.push(req.params.arguments);
      if (req.params.name === 'take' || req.params.name === 'bell\u0007tool')
        return { content: [{ type: 'text', text: 'ok' }] };
      throw new McpError(ErrorCode.InvalidParams, `unknown tool ${req.params.name}`);
    });
    return { server, received };
  }

  async function connected(server: McpServer | Server, clientInfo = { name: 'c', version: '1' }) {
    const sink = new MemorySink();
    const audit = emitter(sink);
    auditMcpServer(server, { emitter: audit, sourceId: 'sdk-wrap-test' });
    const [clientT, serverT] = InMemoryTransport.createLinkedPair();
    await server.connect(serverT);
    const client = new Client(clientInfo);
    await client.connect(clientT);
    return { sink, audit, client };
  }

  it('audits a tools/call whose arguments carry NUL and lone surrogates; the tool gets them unchanged', async () => {
    const { server, received } = buildRecording();
    const { sink, audit, client } = await connected(server);
    const sent = structuredClone(NUL_ARGS);
    await client.callTool({ name: 'take', arguments: sent });
    await audit.flush();
    assert.deepEqual(received, [NUL_ARGS], 'the tool sees exactly what the client sent');
    assert.deepEqual(sent, NUL_ARGS, 'nothing is rewritten in place');
    assert.equal(audit.stats().invalid, 0);
    const call = sink.events.find((e) => e.method === 'tools/call');
    assert.ok(call, 'the call is audited');
    valid(call);
    assert.deepEqual(call.args, {
      text: 'a\ufffdb',
      'k\ufffd': 'c\ufffd',
      nested: [{ '\ufffd': 'x\ufffd' }],
    });
    assert.equal(call.tool?.name, 'take');
    assert.equal(call.labels, undefined, 'a clean tool name gets no labels');
    await client.close();
    await audit.close();
  });

  it('audits prompts/get and resources/read with NUL and lone surrogates in names, error messages sanitized', async () => {
    const { sink, audit, client } = await connected(buildMcpServer());
    const echoed = await client.callTool({ name: 'echo', arguments: { text: 'nul\u0000here' } });
    assert.deepEqual(echoed.content, [{ type: 'text', text: 'nul\u0000here' }]);
    await assert.rejects(client.getPrompt({ name: 'gr\u0000eet\ud800' }));
    await assert.rejects(client.readResource({ uri: 'notes://\u0000readme\udfff' }));
    await audit.flush();
    assert.equal(audit.stats().invalid, 0);
    const events = sink.events;
    events.forEach(valid);
    const echo = events.find((e) => e.method === 'tools/call')!;
    assert.deepEqual(echo.args, { text: 'nul\ufffdhere' });
    const prompt = events.find((e) => e.method === 'prompts/get');
    assert.ok(prompt, 'the prompt request is audited');
    assert.equal(prompt.outcome, 'error');
    assert.equal((prompt.args as { name?: string }).name, 'gr\ufffdeet\ufffd');
    assert.doesNotMatch(prompt.error?.message ?? '', NUL_OR_SURROGATE);
    const read = events.find((e) => e.method === 'resources/read');
    assert.ok(read, 'the resource read is audited');
    assert.deepEqual(read.args, { uri: 'notes://\ufffdreadme\ufffd' });
    await client.close();
    await audit.close();
  });

  it('audits a hostile tool name with the gateway labels, and a JSON-RPC error quoting it', async () => {
    const { server, received } = buildRecording();
    const { sink, audit, client } = await connected(server);
    await assert.rejects(client.callTool({ name: HOSTILE_TOOL, arguments: { a: 1 } }), /unknown tool/);
    await client.callTool({ name: '', arguments: {} }).catch(() => undefined);
    await audit.flush();
    assert.deepEqual(received[0], { a: 1 });
    assert.equal(audit.stats().invalid, 0);
    const [hostile, empty] = sink.events.filter((e) => e.method === 'tools/call');
    assert.ok(hostile, 'the call is audited');
    valid(hostile);
    assert.doesNotMatch(hostile.tool!.name, CONTROL_OR_SURROGATE);
    assert.ok(hostile.tool!.name.startsWith('evil\\u0000\\u001b[2K\\u000d\\u000a\ufffdxxx'));
    assert.ok(hostile.tool!.name.endsWith('…[truncated]'));
    assert.deepEqual(hostile.labels, {
      invalid_tool_name: 'invalid_unicode,control_characters,too_long',
      tool_name_sha256: createHash('sha256').update(HOSTILE_TOOL, 'utf8').digest('hex'),
      tool_name_length: String(HOSTILE_TOOL.length),
    });
    assert.equal(hostile.rpc_error_code, ErrorCode.InvalidParams);
    assert.match(hostile.error?.message ?? '', /unknown tool evil\ufffd/);
    assert.doesNotMatch(hostile.error?.message ?? '', NUL_OR_SURROGATE);
    assert.ok(empty, 'an empty tool name is audited too');
    assert.equal(empty.tool?.name, '(empty)');
    assert.equal(empty.labels?.invalid_tool_name, 'empty');
    await client.close();
    await audit.close();
  });

  it('audits tools/list entries with control characters in their names, and calls to them keep the hash', async () => {
    const { server } = buildRecording();
    const { sink, audit, client } = await connected(server);
    const listed = await client.listTools();
    await client.callTool({ name: 'bell\u0007tool', arguments: {} });
    await audit.flush();
    assert.equal(audit.stats().invalid, 0);
    const lists = sink.events.filter((e) => e.method === 'tools/list' && e.tool !== undefined);
    assert.equal(lists.length, 2, 'one event per listed tool, the hostile one included');
    lists.forEach(valid);
    const bell = lists.find((e) => e.labels?.invalid_tool_name === 'control_characters');
    assert.ok(bell);
    assert.equal(bell.tool?.name, 'bell\\u0007tool');
    assert.equal(bell.tool?.definition_hash, toolDefinitionHash(listed.tools[1]!));
    assert.equal(bell.labels?.['mcp.list_index'], '1');
    const call = sink.events.find((e) => e.method === 'tools/call');
    assert.ok(call);
    valid(call);
    assert.equal(call.tool?.name, 'bell\\u0007tool');
    assert.equal(call.tool?.definition_hash, bell.tool?.definition_hash);
    assert.equal(call.labels?.invalid_tool_name, 'control_characters');
    await client.close();
    await audit.close();
  });

  it('audits a client whose clientInfo name and version carry control characters and lone surrogates', async () => {
    const { server } = buildRecording();
    const { sink, audit, client } = await connected(server, {
      name: '\u0000evil\r\nclient\ud800\u007f',
      version: '1\t2',
    });
    await client.callTool({ name: 'take', arguments: {} });
    await audit.flush();
    assert.equal(audit.stats().invalid, 0);
    const events = sink.events;
    assert.deepEqual(
      events.map((e) => e.method),
      ['initialize', 'tools/call'],
      'the session and the call are both audited',
    );
    events.forEach(valid);
    for (const e of events) assert.equal(e.client.agent, 'evil  client\ufffd/1 2');
    const clientInfo = (events[0]!.args as { clientInfo?: { name?: string } }).clientInfo;
    assert.equal(
      clientInfo?.name,
      '\ufffdevil\r\nclient\ufffd\u007f',
      'args are free text: NUL and surrogates only',
    );
    await client.close();
    await audit.close();
  });
});
