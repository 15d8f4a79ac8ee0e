/**
 * The gateway with real MCP parts: the official SDK client talks to the gateway (its compiled
 * main.js, as `npm start` runs it), which fronts the published reference servers from npm
 * (server-everything over stdio and over Streamable HTTP, server-filesystem over stdio) and a small
 * SDK server whose tool changes (the rug pull). Events go through the SDK's Kafka sink to a test
 * topic, a real ingester writes them to ClickHouse, and the test reads them back.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin } from 'kafkajs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CreateMessageRequestSchema,
  CreateTaskResultSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { sql, type ClickHouse } from '@mcp-audit/clickhouse';
import {
  REPO_ROOT,
  analyst,
  brokers,
  createTestTopics,
  env as stackEnv,
  ingesterEnv,
  kafka,
  startService,
  suffix,
  waitFor,
  type ServiceProcess,
  listeningPort,
  listeningPortsOfPid,
} from '../lib/index.js';

const EVERYTHING = `${REPO_ROOT}node_modules/@modelcontextprotocol/server-everything/dist/index.js`;
const FILESYSTEM = `${REPO_ROOT}node_modules/@modelcontextprotocol/server-filesystem/dist/index.js`;
const FIXTURE = `${REPO_ROOT}services/gateway/dist/test/fixtures/changing-tool-server.js`;
const tag = suffix();
const gatewayId = `gw-e2e-${tag}`;
const clientId = `e2e-client-${tag}`;
const key = `mcpg_${createHash('sha256').update(`e2e-${tag}-${Date.now()}`).digest('base64url')}`;
const adminKey = `mcpg_${createHash('sha256').update(`admin-${tag}-${Date.now()}`).digest('base64url')}`;

let admin: Admin;
let ingester: ServiceProcess;
let gateway: ServiceProcess;
let everythingHttp: ChildProcess;
let everythingHttpRequests = 0;
let everythingUrl: string;
let gatewayUrl: string;
let fsDir: string;
let ch: ClickHouse;
// server-everything behind a front that wants a credential of its own (as a hosted server does).
let securedFront: http.Server;
const securedSeen: http.IncomingHttpHeaders[] = [];
const upstreamToken = `upstream-${tag}-${Date.now()}`;

// The same few variables the SDK's stdio transport passes to a child, so get-env matches both ways.
const inheritedEnv = Object.fromEntries(
  ['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER'].flatMap((k) =>
    process.env[k] ? [[k, process.env[k]!]] : [],
  ),
);

before(async () => {
  admin = kafka().admin();
  await admin.connect();
  const topics = await createTestTopics(admin, 'gateway', 1);
  ingester = startService('ingester', ingesterEnv(topics, `e2e-gateway-${tag}`), tag);

  // PORT=0: the OS picks the port; server-everything logs the 0 it was given, so the port it got is
  // read from /proc.
  everythingHttp = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], {
    env: { ...inheritedEnv, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // server-everything logs one line per HTTP request: proof of (no) upstream traffic.
  everythingHttp.stdout!.on('data', (b: Buffer) => {
    everythingHttpRequests += (b.toString().match(/Received MCP (POST|GET|DELETE) request/g) ?? []).length;
  });
  let listening = false;
  everythingHttp.stderr!.on('data', (b: Buffer) => {
    if (/listening on port/.test(b.toString())) listening = true;
  });
  await waitFor(() => listening, { what: 'server-everything streamableHttp', timeoutMs: 20_000 });
  const [httpPort] = await listeningPortsOfPid(everythingHttp.pid!);
  everythingUrl = `http://127.0.0.1:${httpPort}/mcp`;

  securedFront = http.createServer((req, res) => {
    securedSeen.push(req.headers);
    if (req.headers.authorization !== `Bearer ${upstreamToken}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
      return;
    }
    const up = http.request(everythingUrl, { method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => securedFront.listen(0, '127.0.0.1', resolve));
  const securedUrl = `http://127.0.0.1:${(securedFront.address() as AddressInfo).port}/mcp`;

  fsDir = mkdtempSync(join(tmpdir(), 'gw-fs-'));
  writeFileSync(join(fsDir, 'notes.txt'), 'hello from the filesystem server\n');
  mkdirSync(join(fsDir, 'sub'));

  const dir = `${REPO_ROOT}.local/test-logs/gateway-${tag}`;
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'gateway.json');
  writeFileSync(
    config,
    JSON.stringify({
      gateway_id: gatewayId,
      upstreams: [
        { name: 'everything-stdio', transport: 'stdio', command: 'node', args: [EVERYTHING, 'stdio'] },
        { name: 'everything-http', transport: 'http', url: everythingUrl },
        {
          name: 'everything-secured',
          transport: 'http',
          url: securedUrl,
          headers: { authorization: 'env:GW_E2E_UPSTREAM_AUTH', 'x-e2e-gateway': 'plain value' },
        },
        { name: 'filesystem', transport: 'stdio', command: 'node', args: [FILESYSTEM, fsDir] },
        { name: 'changing', transport: 'stdio', command: 'node', args: [FIXTURE] },
      ],
      clients: [
        { id: clientId, user: 'e2e@example.com', sha256: createHash('sha256').update(key).digest('hex') },
        {
          id: `${clientId}-ops`,
          sha256: createHash('sha256').update(adminKey).digest('hex'),
          scopes: ['mcp', 'admin'],
        },
      ],
      guard: { enabled: true, state_file: join(dir, 'tools.state.json') },
      rate_limit: { per_second: 1000, burst: 1000 },
    }),
  );
  gateway = startService(
    'gateway',
    {
      ...inheritedEnv,
      MCP_AUDIT_GATEWAY_CONFIG: config,
      GW_E2E_UPSTREAM_AUTH: `Bearer ${upstreamToken}`,
      MCP_AUDIT_GATEWAY_PORT: '0',
      MCP_AUDIT_GATEWAY_OPS_PORT: '0',
      MCP_AUDIT_SDK_SINK: 'kafka',
      MCP_AUDIT_SDK_KAFKA_TOPIC: topics.events,
      MCP_AUDIT_KAFKA_BROKERS: brokers.join(','),
      MCP_AUDIT_REDACTION_KEY: stackEnv.MCP_AUDIT_REDACTION_KEY ?? 'test-redaction-key-0123456789',
      MCP_AUDIT_LOG_LEVEL: 'info',
    },
    tag,
  );
  gatewayUrl = `http://127.0.0.1:${await listeningPort(gateway, 'gateway')}`;
  await waitFor(
    async () =>
      (await fetch(`${gatewayUrl}/.well-known/oauth-protected-resource`).catch(() => undefined))?.ok,
    { what: 'gateway listening', timeoutMs: 20_000 },
  );
  ch = analyst();
});

after(async () => {
  await gateway?.stop();
  await ingester?.stop();
  everythingHttp?.kill('SIGINT');
  securedFront?.closeAllConnections();
  securedFront?.close();
  await admin?.disconnect();
  await ch?.close();
});

/** A client with sampling, elicitation and roots, as a desktop client would have. */
function newClient(): Client {
  const c = new Client(
    { name: 'e2e-gateway', version: '1.0.0' },
    { capabilities: { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } } },
  );
  c.setRequestHandler(CreateMessageRequestSchema, async () => ({
    role: 'assistant',
    content: { type: 'text', text: 'sampled by the e2e client' },
    model: 'e2e-model',
    stopReason: 'endTurn',
  }));
  c.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'decline' }));
  c.setRequestHandler(ListRootsRequestSchema, async () => ({
    roots: [{ uri: 'file:///e2e-root', name: 'e2e root' }],
  }));
  return c;
}

/** Byte sizes of each request sent and response received, by JSON-RPC id (what the gateway audits). */
function sizes(t: Transport) {
  const sent = new Map<string, number>();
  const received = new Map<string, number>();
  const send = t.send.bind(t);
  t.send = async (m, o) => {
    if ('id' in m && 'method' in m) sent.set(String(m.id), Buffer.byteLength(JSON.stringify(m)));
    return send(m, o);
  };
  return {
    sent,
    received,
    hook() {
      const orig = t.onmessage!;
      t.onmessage = (m, e) => {
        if ('id' in m && !('method' in m)) received.set(String(m.id), Buffer.byteLength(JSON.stringify(m)));
        orig(m, e);
      };
    },
  };
}

async function viaGateway(upstream: string, credential = key) {
  const client = newClient();
  const t = new StreamableHTTPClientTransport(new URL(`${gatewayUrl}/mcp/${upstream}`), {
    requestInit: { headers: { authorization: `Bearer ${credential}`, 'user-agent': 'e2e-gateway-test/1.0' } },
  });
  const s = sizes(t);
  await client.connect(t);
  s.hook();
  return { client, sizes: s, lastId: () => [...s.sent.keys()].at(-1)! };
}

async function direct(kind: 'stdio' | 'http') {
  const client = newClient();
  const t: Transport =
    kind === 'stdio'
      ? new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'], stderr: 'ignore' })
      : new StreamableHTTPClientTransport(new URL(everythingUrl));
  await client.connect(t);
  return client;
}

/** Valid arguments from a tool's input schema; a few tools get values that keep the run short and offline. */
function argsFor(tool: Tool): Record<string, unknown> {
  const special: Record<string, Record<string, unknown>> = {
    'trigger-long-running-operation': { duration: 0.3, steps: 3 },
    'gzip-file-as-resource': {
      name: 'e2e.txt.gz',
      data: `data:text/plain;base64,${Buffer.from('gzip me through the gateway').toString('base64')}`,
      outputType: 'resource',
    },
    'trigger-url-elicitation': { url: 'https://example.com/consent' },
  };
  if (special[tool.name]) return special[tool.name]!;
  const props = (tool.inputSchema.properties ?? {}) as Record<string, Record<string, unknown>>;
  const out: Record<string, unknown> = {};
  for (const name of tool.inputSchema.required ?? []) {
    const p = props[name] ?? {};
    if (p.default !== undefined) out[name] = p.default;
    else if (Array.isArray(p.enum)) out[name] = p.enum[0];
    else if (p.type === 'number' || p.type === 'integer')
      out[name] = typeof p.minimum === 'number' ? p.minimum : 2;
    else if (p.type === 'boolean') out[name] = false;
    else if (p.type === 'array') out[name] = [];
    else if (p.type === 'object') out[name] = {};
    else out[name] = `e2e ${name}`;
  }
  return out;
}

type Outcome =
  { ok: true; result: unknown; progress: number } | { ok: false; code?: number; message: string };

async function call(client: Client, tool: Tool): Promise<Outcome> {
  let progress = 0;
  try {
    // A task-only tool is refused by the SDK client's callTool before anything is sent: start it
    // as a task (the CreateTaskResult comes back through the gateway like any result).
    if (tool.execution?.taskSupport === 'required') {
      const result = await client.request(
        {
          method: 'tools/call',
          params: { name: tool.name, arguments: argsFor(tool), task: { ttl: 60_000 } },
        },
        CreateTaskResultSchema,
      );
      return { ok: true, result, progress };
    }
    const result = await client.callTool({ name: tool.name, arguments: argsFor(tool) }, undefined, {
      onprogress: () => void (progress += 1),
      timeout: 20_000,
    });
    return { ok: true, result, progress };
  } catch (err) {
    const e = err as { code?: number; message: string };
    return { ok: false, code: e.code, message: e.message };
  }
}

/**
 * The only fields normalized before comparing: UUIDs (server-everything puts the session id in
 * toggle-simulated-logging's text; task ids), task timestamps, and how many progress notifications
 * arrived before the response (timing: the SDK client drops progress that comes after it).
 */
function normalize(v: Outcome): unknown {
  const { progress: _progress, ...rest } = v as Outcome & { progress?: number };
  return JSON.parse(
    JSON.stringify(rest)
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
      .replace(/"taskId":"[^"]+"/g, '"taskId":"<id>"')
      .replace(/"(createdAt|lastUpdatedAt)":"[^"]+"/g, '"$1":"<ts>"'),
  );
}

interface EventRow {
  kind: string;
  method: string;
  client_id: string;
  client_user: string;
  client_ip: string;
  client_user_agent: string;
  server_name: string;
  server_transport: string;
  tool_name: string;
  tool_definition_hash: string;
  outcome: string;
  rpc_error_code: number | null;
  request_bytes: string;
  response_bytes: string;
  auth_reason: string;
  label_keys: string[];
  label_values: string[];
}

async function rows(where: ReturnType<typeof sql>, n: number, what: string): Promise<EventRow[]> {
  return waitFor(
    async () => {
      const r = await ch.query<EventRow>(
        sql`SELECT kind, method, client_id, client_user, client_ip, client_user_agent, server_name, server_transport, tool_name, tool_definition_hash, outcome, rpc_error_code, request_bytes, response_bytes, auth_reason, label_keys, label_values FROM mcp_audit.events FINAL WHERE source_id = ${gatewayId} AND ${where}`,
      );
      return r.length >= n ? r : undefined;
    },
    { what, timeoutMs: 60_000, intervalMs: 500 },
  );
}
const label = (r: EventRow, k: string) => r.label_values[r.label_keys.indexOf(k)];

for (const kind of ['stdio', 'http'] as const) {
  test(`every server-everything tool over ${kind} returns through the gateway what it returns directly, and is audited`, async () => {
    const upstream = `everything-${kind}`;
    const d = await direct(kind);
    const g = await viaGateway(upstream);
    try {
      const directTools = (await d.listTools()).tools;
      const gatewayTools = (await g.client.listTools()).tools;
      assert.deepEqual(gatewayTools, directTools, 'the tool list passes unchanged');
      assert.ok(directTools.length >= 15, `server-everything lists ${directTools.length} tools`);

      const expected: Array<{ tool: string; outcome: string; req: number; res: number }> = [];
      for (const tool of directTools) {
        const want = await call(d, tool);
        const sentBefore = g.sizes.sent.size;
        const got = await call(g.client, tool);
        assert.ok(g.sizes.sent.size > sentBefore, `${tool.name}: the call went through the gateway`);
        assert.deepEqual(normalize(got), normalize(want), `${tool.name}: same result through the gateway`);
        const id = g.lastId();
        const res = g.sizes.received.get(id);
        // A call that failed in the client SDK before any response (none here) would have no size.
        assert.ok(res !== undefined, `${tool.name}: a response arrived`);
        const isError = got.ok && (got.result as { isError?: boolean }).isError === true;
        expected.push({
          tool: tool.name,
          outcome: !got.ok || isError ? 'error' : 'ok',
          req: g.sizes.sent.get(id)!,
          res,
        });
      }
      // Progress notifications passed through (the long-running tool reports each step).
      const long = await call(
        g.client,
        directTools.find((t) => t.name === 'trigger-long-running-operation')!,
      );
      assert.ok(
        long.ok && long.progress === 3,
        `progress notifications through the gateway: ${JSON.stringify(long)}`,
      );

      const stored = await rows(
        sql`kind = 'tool_call' AND server_name = ${upstream} AND client_id = ${clientId}`,
        expected.length + 1,
        `${expected.length + 1} tool_call events of ${upstream}`,
      );
      for (const e of expected) {
        const r = stored.find((s) => s.tool_name === e.tool && Number(s.request_bytes) === e.req);
        assert.ok(r, `${e.tool}: its event is in ClickHouse`);
        assert.equal(r.outcome, e.outcome, `${e.tool}: outcome`);
        assert.equal(r.client_user, 'e2e@example.com');
        assert.equal(r.client_ip, '127.0.0.1');
        assert.equal(r.client_user_agent, 'e2e-gateway-test/1.0');
        assert.equal(r.server_transport, kind);
        assert.equal(r.method, 'tools/call');
        assert.match(r.tool_definition_hash, /^[0-9a-f]{64}$/, `${e.tool}: definition hash`);
        assert.equal(Number(r.response_bytes), e.res, `${e.tool}: response size`);
      }
    } finally {
      await g.client.close();
      await d.close();
    }
  });
}

test('server-filesystem over stdio: same results through the gateway, audited', async () => {
  const d = newClient();
  await d.connect(
    new StdioClientTransport({ command: process.execPath, args: [FILESYSTEM, fsDir], stderr: 'ignore' }),
  );
  const g = await viaGateway('filesystem');
  try {
    assert.deepEqual((await g.client.listTools()).tools, (await d.listTools()).tools);
    const calls = [
      { name: 'list_allowed_directories', arguments: {} },
      { name: 'list_directory', arguments: { path: fsDir } },
      { name: 'read_text_file', arguments: { path: join(fsDir, 'notes.txt') } },
      { name: 'read_text_file', arguments: { path: '/etc/passwd' } },
    ];
    for (const c of calls) assert.deepEqual(await g.client.callTool(c), await d.callTool(c), c.name);
    const stored = await rows(
      sql`kind = 'tool_call' AND server_name = 'filesystem' AND client_id = ${clientId}`,
      calls.length,
      'filesystem events',
    );
    assert.deepEqual(stored.map((r) => r.tool_name).sort(), calls.map((c) => c.name).sort());
    // Outside the allowed directory the server refuses: the event says error, not ok.
    assert.equal(stored.filter((r) => r.outcome === 'error').length, 1);
  } finally {
    await g.client.close();
    await d.close();
  }
});

test('wrong credentials: 401, auth_failed events with address and user agent, no upstream request', async () => {
  const before = everythingHttpRequests;
  const bad = [`mcpg_${'x'.repeat(40)}`, `${key.slice(0, -2)}zz`];
  for (const credential of bad)
    await assert.rejects(viaGateway('everything-http', credential), /invalid credential/);
  const res = await fetch(`${gatewayUrl}/mcp/everything-http`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'no-key-client/0.1' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  assert.equal(res.status, 401);
  assert.match(
    res.headers.get('www-authenticate') ?? '',
    /resource_metadata=".*\/oauth-protected-resource\/mcp\/everything-http"/,
  );
  const stored = await rows(sql`outcome = 'auth_failed'`, 3, 'auth_failed events');
  assert.ok(
    stored.every(
      (r) => r.kind === 'auth' && r.client_ip === '127.0.0.1' && r.server_name === 'everything-http',
    ),
  );
  assert.ok(
    stored.some((r) => r.client_user_agent === 'e2e-gateway-test/1.0' && r.auth_reason === 'unknown_key'),
  );
  assert.ok(
    stored.some((r) => r.client_user_agent === 'no-key-client/0.1' && r.auth_reason === 'missing_credential'),
  );
  assert.equal(everythingHttpRequests, before, 'the upstream saw no request');
});

test('rug pull: a changed tool description is an event, and with the guard on the call is refused until approved', async () => {
  const g = await viaGateway('changing');
  try {
    await g.client.listTools();
    await g.client.callTool({ name: 'rug_pull', arguments: {} });
    const changed = (await g.client.listTools()).tools.find((t) => t.name === 'get_weather')!;
    assert.match(changed.description ?? '', /id_rsa/);
    await assert.rejects(
      g.client.callTool({ name: 'get_weather', arguments: { city: 'Oslo' } }),
      /re-approval/,
    );

    const [change] = await rows(
      sql`kind = 'tool_list' AND server_name = 'changing' AND has(label_values, 'definition_changed')`,
      1,
      'definition change event',
    );
    assert.equal(change!.tool_name, 'get_weather');
    assert.equal(label(change!, 'guard'), 'blocked');
    assert.match(label(change!, 'previous_hash') ?? '', /^[0-9a-f]{64}$/);
    assert.notEqual(label(change!, 'previous_hash'), change!.tool_definition_hash);
    const [denied] = await rows(
      sql`kind = 'tool_call' AND server_name = 'changing' AND outcome = 'denied'`,
      1,
      'denied call event',
    );
    assert.equal(denied!.tool_name, 'get_weather');
    assert.equal(denied!.rpc_error_code, -32040);

    // The operator approves the definition they reviewed, by its hash: a stale hash is refused.
    const approve = (definition_hash: string) =>
      fetch(`${gatewayUrl}/admin/tools/approve`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ upstream: 'changing', tool: 'get_weather', definition_hash }),
      });
    const listed = (await (
      await fetch(`${gatewayUrl}/admin/tools`, { headers: { authorization: `Bearer ${adminKey}` } })
    ).json()) as { tools: Array<{ upstream: string; tool: string; current_hash: string }> };
    const current = listed.tools.find((t) => t.upstream === 'changing' && t.tool === 'get_weather')!;
    assert.equal(current.current_hash, change!.tool_definition_hash);
    const stale = await approve(label(change!, 'previous_hash')!);
    assert.equal(stale.status, 409);
    const conflict = (await stale.json()) as { current_hash: string; requested_hash: string };
    assert.equal(conflict.current_hash, current.current_hash);
    assert.equal(conflict.requested_hash, label(change!, 'previous_hash'));
    assert.equal((await approve(current.current_hash)).status, 200);
    const [refusedApproval] = await rows(
      sql`method = 'admin/tools/approve' AND outcome = 'denied' AND tool_name = 'get_weather'`,
      1,
      'the refused approval event',
    );
    assert.equal(label(refusedApproval!, 'change'), 'approval_refused');
    const ok = await g.client.callTool({ name: 'get_weather', arguments: { city: 'Oslo' } });
    assert.deepEqual(ok.content, [{ type: 'text', text: 'sunny in Oslo' }]);
  } finally {
    await g.client.close();
  }
});

test('HTTP upstream headers: env:NAME values reach the upstream on every request, never the logs', async () => {
  const { client } = await viaGateway('everything-secured');
  const directClient = await direct('http');
  try {
    const sum = await client.callTool({ name: 'get-sum', arguments: { a: 20, b: 22 } });
    assert.deepEqual(sum, await directClient.callTool({ name: 'get-sum', arguments: { a: 20, b: 22 } }));
  } finally {
    await directClient.close();
    await client.close();
  }
  assert.ok(securedSeen.length >= 3, 'initialize, notifications/initialized and tools/call went upstream');
  for (const h of securedSeen) {
    assert.equal(h.authorization, `Bearer ${upstreamToken}`);
    assert.equal(h['x-e2e-gateway'], 'plain value');
    assert.ok(!JSON.stringify(h).includes(key), "the client's gateway key never travels upstream");
  }
  const [row] = await rows(
    sql`server_name = 'everything-secured' AND kind = 'tool_call'`,
    1,
    'the secured upstream tool_call event',
  );
  assert.equal(row!.outcome, 'ok');
  assert.equal(row!.tool_name, 'get-sum');
  assert.ok(
    !readFileSync(gateway.logFile, 'utf8').includes(upstreamToken),
    'the upstream credential is not logged',
  );
});

test('refused requests are audited too: unknown upstream, no session, unknown session, body too large, bad JSON', async () => {
  const before = everythingHttpRequests;
  const headers = {
    authorization: `Bearer ${key}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'user-agent': 'e2e-refusals/1.0',
  };
  const call = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: 'echo', arguments: {} },
  });
  const sent: Array<[string, RequestInit, number]> = [
    [`${gatewayUrl}/mcp/no-such-upstream`, { method: 'POST', headers, body: call }, 404],
    [`${gatewayUrl}/mcp/everything-http`, { method: 'POST', headers, body: call }, 400],
    [
      `${gatewayUrl}/mcp/everything-http`,
      { method: 'POST', headers: { ...headers, 'mcp-session-id': `gone-${tag}` }, body: call },
      404,
    ],
    [`${gatewayUrl}/mcp/everything-http`, { method: 'POST', headers, body: '{"jsonrpc":' }, 400],
  ];
  for (const [url, init, status] of sent) {
    const res = await fetch(url, init);
    assert.equal(res.status, status, url);
    await res.text();
  }
  // limits.body_bytes defaults to 4 MiB. NOTE: the answer comes from the declared Content-Length,
  // before any of the body is read; a client still uploading then gets EPIPE instead of the 413
  // (fetch does), so only the headers are sent here.
  assert.equal(
    await new Promise<number>((resolve, reject) => {
      const req = http.request(
        `${gatewayUrl}/mcp/everything-http`,
        { method: 'POST', headers: { ...headers, 'content-length': String(4_300_000) } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
          req.destroy();
        },
      );
      req.on('error', reject);
      req.flushHeaders();
    }),
    413,
    'a body declared over limits.body_bytes',
  );
  const stored = await waitFor(
    async () => {
      const r = await ch.query<{
        kind: string;
        method: string;
        client_id: string;
        client_ip: string;
        client_user_agent: string;
        session_id: string;
        outcome: string;
        http_status: number | null;
        error_code: string;
      }>(
        sql`SELECT kind, method, client_id, client_ip, client_user_agent, session_id, outcome, http_status, error_code FROM mcp_audit.events FINAL WHERE source_id = ${gatewayId} AND client_user_agent = 'e2e-refusals/1.0'`,
      );
      return r.length >= sent.length ? r : undefined;
    },
    { what: 'the refusal events in ClickHouse', timeoutMs: 60_000, intervalMs: 500 },
  );
  const byCode = new Map(stored.map((r) => [r.error_code, r]));
  assert.deepEqual([...byCode.keys()].sort(), [
    'body_too_large',
    'invalid_json',
    'missing_session',
    'unknown_session',
    'unknown_upstream',
  ]);
  for (const r of stored) {
    assert.equal(r.client_id, clientId, r.error_code);
    assert.equal(r.client_ip, '127.0.0.1');
    assert.equal(r.outcome, 'error');
  }
  assert.equal(byCode.get('unknown_upstream')!.http_status, 404);
  assert.equal(byCode.get('unknown_upstream')!.kind, 'tool_call');
  assert.equal(byCode.get('unknown_session')!.session_id, `gone-${tag}`);
  assert.equal(byCode.get('body_too_large')!.http_status, 413);
  assert.equal(byCode.get('invalid_json')!.http_status, 400);
  assert.equal(byCode.get('missing_session')!.method, 'tools/call');
  assert.equal(everythingHttpRequests, before, 'none of them reached the upstream');
});
