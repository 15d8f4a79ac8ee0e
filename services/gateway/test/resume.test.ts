import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryEventStore } from '@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolResultSchema, isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { SessionEventStore } from '../src/event-store.js';
import { testGateway } from './helpers.js';

/**
 * Resumability through the gateway, with the official SDK on both ends: an upstream with an event
 * store (the SDK's InMemoryEventStore), a client whose SSE stream is cut mid-way. Directly, the
 * client resumes with Last-Event-ID and gets every message once; through the gateway it must too.
 */

/** A real SDK server over HTTP with an event store; `countdown` sends progress, then answers. */
async function upstreamServer() {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const lastEventIds: string[] = [];
  const runs = { countdown: 0 };
  const newServer = () => {
    const server = new McpServer({ name: 'resumable-upstream', version: '1.0.0' });
    server.registerTool(
      'countdown',
      {
        description: 'Sends n progress notifications, ms apart, then answers.',
        inputSchema: { n: z.number(), ms: z.number(), close_at: z.number().optional() },
      },
      async ({ n, ms, close_at }, extra) => {
        runs.countdown++;
        const token = extra._meta?.progressToken;
        for (let i = 1; i <= n; i++) {
          if (token !== undefined)
            await extra.sendNotification({
              method: 'notifications/progress',
              params: { progressToken: token, progress: i, total: n, message: `step ${i}` },
            });
          // The server ends its own stream (SDK polling mode): the client must come back for the rest.
          if (i === close_at) extra.closeSSEStream?.();
          await new Promise((r) => setTimeout(r, ms));
        }
        return { content: [{ type: 'text', text: `done ${n}` }] };
      },
    );
    return server;
  };
  const httpServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const last = req.headers['last-event-id'];
        if (typeof last === 'string') lastEventIds.push(last);
        const body =
          chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString()) as unknown) : undefined;
        const sid = req.headers['mcp-session-id'];
        let transport = typeof sid === 'string' ? transports.get(sid) : undefined;
        if (!transport && req.method === 'POST' && isInitializeRequest(body)) {
          const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
            sessionIdGenerator: randomUUID,
            eventStore: new InMemoryEventStore(),
            onsessioninitialized: (id) => void transports.set(id, t),
          });
          await newServer().connect(t);
          transport = t;
        }
        if (!transport) {
          res.writeHead(404).end();
          return;
        }
        await transport.handleRequest(req, res, body);
      })();
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const port = (httpServer.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    lastEventIds,
    runs,
    async close() {
      await Promise.allSettled([...transports.values()].map((t) => t.close()));
      httpServer.closeAllConnections();
      await new Promise((r) => httpServer.close(r));
    },
  };
}

/**
 * A fetch that cuts the SSE answer of the first `tools/call` POST after `cutAfter` progress events
 * (a dropped connection: the reader errors, the socket is closed), and records the Last-Event-ID of
 * every later GET.
 */
function cuttingFetch(cutAfter: number) {
  const resumedWith: string[] = [];
  let cut = false;
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = new Headers(init?.headers);
    const last = headers.get('last-event-id');
    if (last) resumedWith.push(last);
    const res = await fetch(input, init);
    const isCall =
      init?.method === 'POST' && typeof init.body === 'string' && init.body.includes('"tools/call"');
    if (cut || !isCall || !res.body || !res.headers.get('content-type')?.includes('text/event-stream'))
      return res;
    cut = true;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let buffer = '';
    let progress = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        for (;;) {
          const end = buffer.indexOf('\n\n');
          if (end >= 0) {
            const event = buffer.slice(0, end + 2);
            buffer = buffer.slice(end + 2);
            controller.enqueue(encoder.encode(event));
            if (event.includes('notifications/progress') && ++progress >= cutAfter) {
              await reader.cancel();
              controller.error(new TypeError('terminated: connection reset (test)'));
            }
            return;
          }
          const { value, done } = await reader.read();
          if (done) {
            controller.close();
            return;
          }
          buffer += decoder.decode(value, { stream: true });
        }
      },
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  return { fetch: f, resumedWith };
}

const RECONNECT = {
  initialReconnectionDelay: 20,
  maxReconnectionDelay: 200,
  reconnectionDelayGrowFactor: 1.5,
  maxRetries: 5,
};

/** Calls countdown through `url` with a cut after `cutAfter` progress events; what the client saw. */
async function callWithCut(
  url: string,
  opts: {
    headers?: Record<string, string>;
    cutAfter: number;
    n: number;
    closeAt?: number;
    timeoutMs?: number;
  },
) {
  const cutter = cuttingFetch(opts.cutAfter);
  const client = new Client({ name: 'resume-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: opts.headers ?? {} },
    fetch: cutter.fetch,
    reconnectionOptions: RECONNECT,
  });
  await client.connect(transport);
  const progress: number[] = [];
  try {
    const result = await client.callTool(
      {
        name: 'countdown',
        arguments: { n: opts.n, ms: 40, ...(opts.closeAt ? { close_at: opts.closeAt } : {}) },
      },
      undefined,
      { onprogress: (p) => progress.push(p.progress), timeout: opts.timeoutMs ?? 10_000 },
    );
    const text = (result.content as Array<{ text: string }>)[0]?.text;
    return { text, progress, resumedWith: cutter.resumedWith };
  } catch (err) {
    return { error: err as Error, progress, resumedWith: cutter.resumedWith };
  } finally {
    await client.close();
  }
}

const oneToN = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

test('a stream cut mid-way resumes with Last-Event-ID through the gateway exactly as directly', async () => {
  const upstream = await upstreamServer();
  const { gw, keys } = testGateway({
    upstreams: [{ name: 'resumable', transport: 'http', url: upstream.url, headers: {} }],
  });
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const direct = await callWithCut(upstream.url, { cutAfter: 3, n: 8 });
    assert.equal(direct.error, undefined, String(direct.error));
    assert.equal(direct.text, 'done 8');
    assert.deepEqual(direct.progress, oneToN(8), 'directly: every progress event once, in order');
    assert.ok(direct.resumedWith.length >= 1, 'directly: the client resumed with Last-Event-ID');

    const via = await callWithCut(`${base}/mcp/resumable`, {
      headers: { authorization: `Bearer ${keys.user}` },
      cutAfter: 3,
      n: 8,
    });
    assert.equal(via.error, undefined, String(via.error));
    assert.equal(via.text, 'done 8');
    assert.deepEqual(via.progress, direct.progress, 'through the gateway: the same messages, once each');
    assert.ok(via.resumedWith.length >= 1, 'through the gateway: the client resumed with Last-Event-ID');
  } finally {
    await gw.stop();
    await upstream.close();
  }
});

test('the upstream ending its stream (SDK polling) and the client losing its own, both in one call', async () => {
  const upstream = await upstreamServer();
  const { gw, keys } = testGateway({
    upstreams: [{ name: 'resumable', transport: 'http', url: upstream.url, headers: {} }],
  });
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const via = await callWithCut(`${base}/mcp/resumable`, {
      headers: { authorization: `Bearer ${keys.user}` },
      cutAfter: 5,
      n: 8,
      closeAt: 2,
    });
    assert.equal(via.error, undefined, String(via.error));
    assert.equal(via.text, 'done 8');
    assert.deepEqual(via.progress, oneToN(8));
    // The gateway's own upstream transport resumed the upstream's stream with the upstream's id.
    assert.ok(upstream.lastEventIds.length >= 1, 'the gateway resumed the upstream stream');
  } finally {
    await gw.stop();
    await upstream.close();
  }
});

test('resumption token: a new client on the same session picks up a call another client lost', async () => {
  const upstream = await upstreamServer();
  const { gw, keys } = testGateway({
    upstreams: [{ name: 'resumable', transport: 'http', url: upstream.url, headers: {} }],
  });
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    for (const [url, requestInit] of [
      [new URL(upstream.url), {}],
      [new URL(`${base}/mcp/resumable`), { headers: { authorization: `Bearer ${keys.user}` } }],
    ] as const) {
      const first = new Client({ name: 'resume-test', version: '1.0.0' });
      const t1 = new StreamableHTTPClientTransport(url, {
        requestInit,
        reconnectionOptions: { ...RECONNECT, maxRetries: 0 },
      });
      await first.connect(t1);
      const sessionId = t1.sessionId!;
      const runsBefore = upstream.runs.countdown;
      let token: string | undefined;
      const seen: number[] = [];
      const lost = first
        .request(
          { method: 'tools/call', params: { name: 'countdown', arguments: { n: 6, ms: 60 } } },
          CallToolResultSchema,
          {
            onprogress: (p) => seen.push(p.progress),
            onresumptiontoken: (t) => (token = t),
            timeout: 10_000,
          },
        )
        .catch((err: unknown) => err);
      while (seen.length < 2) await new Promise((r) => setTimeout(r, 10));
      // The first client goes away without ending the session.
      await t1.close();
      await lost;
      assert.ok(token, `${String(url)}: the first client holds a resumption token`);

      const errors: string[] = [];
      const second = new Client({ name: 'resume-test', version: '1.0.0' });
      const t2 = new StreamableHTTPClientTransport(url, {
        requestInit,
        sessionId,
        reconnectionOptions: { ...RECONNECT, maxRetries: 30 },
      });
      t2.onerror = (e) => errors.push(e.message);
      await second.connect(t2);
      const result = await second
        .request(
          { method: 'tools/call', params: { name: 'countdown', arguments: { n: 6, ms: 60 } } },
          CallToolResultSchema,
          { resumptionToken: token, onresumptiontoken: (t) => (token = t), timeout: 10_000 },
        )
        .catch((err: unknown) => {
          throw new Error(`${String(url)}: ${String(err)}; transport errors: ${errors.join('; ')}`);
        });
      assert.equal(
        (result.content as Array<{ text: string }>)[0]?.text,
        'done 6',
        `${String(url)} ${errors.join('; ')}`,
      );
      // The second client got the answer of the first client's call: the tool ran once.
      assert.equal(upstream.runs.countdown, runsBefore + 1);
      await second.close();
    }
  } finally {
    await gw.stop();
    await upstream.close();
  }
});

test('without an event store (limits.resume_events: 0) the cut stream cannot resume', async () => {
  const upstream = await upstreamServer();
  const { gw, keys } = testGateway({
    upstreams: [{ name: 'resumable', transport: 'http', url: upstream.url, headers: {} }],
    limits: { resume_events: 0 },
  });
  const base = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const via = await callWithCut(`${base}/mcp/resumable`, {
      headers: { authorization: `Bearer ${keys.user}` },
      cutAfter: 2,
      n: 4,
      timeoutMs: 1500,
    });
    assert.ok(via.error, 'the call never completes');
    assert.deepEqual(via.resumedWith, []);
  } finally {
    await gw.stop();
    await upstream.close();
  }
});

test('SessionEventStore: ids of its own, replay per stream, bounded by events and bytes', async () => {
  const store = new SessionEventStore({ maxEvents: 4, maxBytes: 1000 });
  const msg = (i: number) => ({ jsonrpc: '2.0' as const, method: 'notifications/message', params: { i } });
  const a1 = await store.storeEvent('A', msg(1));
  await store.storeEvent('B', msg(2));
  await store.storeEvent('A', msg(3));
  await store.storeEvent('A', msg(4));
  assert.equal(store.streamOf(a1), 'A');
  const replayed: unknown[] = [];
  assert.equal(await store.replayEventsAfter(a1, { send: async (_id, m) => void replayed.push(m) }), 'A');
  assert.deepEqual(replayed, [msg(3), msg(4)]);
  await store.storeEvent('A', msg(5));
  assert.equal(store.size.events, 4);
  assert.equal(store.streamOf(a1), undefined, 'the oldest was evicted');
  assert.equal(store.streamOf('elsewhere.3'), undefined, "another store's id");
  assert.equal(store.streamOf('garbage'), undefined);
  const big = { jsonrpc: '2.0' as const, method: 'x', params: { blob: 'z'.repeat(5000) } };
  const bigId = await store.storeEvent('C', big);
  assert.equal(store.size.events, 1, 'over maxBytes: only the newest is kept');
  assert.equal(store.streamOf(bigId), 'C');
  for (let i = 0; i < 500; i++) await store.storeEvent('D', msg(i));
  assert.equal(store.size.events, 4);
  assert.ok(store.size.bytes < 1000);
});
