import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { UpstreamHttpTransport, createUpstreamFetch, upstreamMessage } from '../src/upstreams.js';

/** An upstream answering each POST with what `answer` writes; records the requests it got. */
async function upstream(
  answer: (body: Record<string, unknown>, res: http.ServerResponse, path: string) => void,
) {
  const seen: Array<{ headers: http.IncomingHttpHeaders; body: Record<string, unknown> }> = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      seen.push({ headers: req.headers, body });
      answer(body, res, req.url ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
  return { url, seen, close: () => new Promise((r) => server.close(r)) };
}

async function transportFor(url: URL) {
  const fetch = createUpstreamFetch();
  const t = new UpstreamHttpTransport(url, { headers: { 'x-upstream-key': 'k1' }, fetch });
  const got: JSONRPCMessage[] = [];
  const errors: Error[] = [];
  t.onmessage = (m) => got.push(m);
  t.onerror = (e) => errors.push(e);
  await t.start();
  return { t, got, errors, close: async () => (await t.close(), fetch.close()) };
}

test('upstream transport fast path: SSE split anywhere (CRLF, multi-line data, comments, events of another name) and JSON answers; session id kept', async () => {
  const result = { content: [{ type: 'text', text: 'ünïcode ✓' }] };
  const up = await upstream((body, res) => {
    if (body.method === 'json') {
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 's-1' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: body.id, result }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    const msg = JSON.stringify({ jsonrpc: '2.0', id: body.id, result });
    const notification = JSON.stringify({
      jsonrpc: '2.0',
      method: 'notifications/message',
      params: { level: 'info', data: 'x' },
    });
    const stream =
      `: keep-alive\r\nevent: ping\r\ndata: ignored\r\n\r\n` +
      `id: e1\r\ndata: ${notification}\r\n\r\n` +
      // one message's JSON over two data lines (joined with \n, which JSON allows between tokens)
      `data: ${msg.slice(0, msg.indexOf(',"result"') + 1)}\r\ndata: ${msg.slice(msg.indexOf(',"result"') + 1)}\r\n\r\n`;
    const bytes = Buffer.from(stream);
    // Cut inside a CRLF and inside a multi-byte character.
    const cuts = [stream.indexOf('\r\n') + 1, bytes.indexOf(Buffer.from('ü')) + 1, bytes.length - 3];
    let at = 0;
    for (const c of cuts) {
      res.write(bytes.subarray(at, c));
      at = c;
    }
    res.end(bytes.subarray(at));
  });
  const c = await transportFor(up.url);
  try {
    await c.t.send({ jsonrpc: '2.0', id: 1, method: 'json', params: {} });
    assert.equal(c.t.sessionId, 's-1');
    await c.t.send({ jsonrpc: '2.0', id: 2, method: 'sse', params: {} });
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(c.errors, []);
    assert.deepEqual(c.got, [
      { jsonrpc: '2.0', id: 1, result },
      { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } },
      { jsonrpc: '2.0', id: 2, result },
    ]);
    // Session id, configured headers and the content negotiation on the second request.
    assert.equal(up.seen[1]!.headers['mcp-session-id'], 's-1');
    assert.equal(up.seen[1]!.headers['x-upstream-key'], 'k1');
    assert.equal(up.seen[1]!.headers.accept, 'application/json, text/event-stream');
  } finally {
    await c.close();
    await up.close();
  }
});

test('upstream transport fast path: a non-2xx answer rejects the send with its status; invalid messages are errors, not messages', async () => {
  const up = await upstream((body, res, path) => {
    if (body.method === 'moved' && path === '/mcp')
      return void res.writeHead(307, { location: '/mcp2' }).end();
    if (body.method === 'gone')
      return void res.writeHead(404, { 'content-type': 'text/plain' }).end('no session');
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(`data: {"jsonrpc":"2.0","id":${String(body.id)},"result":{},"extra":1}\n\n`);
  });
  const c = await transportFor(up.url);
  try {
    await assert.rejects(c.t.send({ jsonrpc: '2.0', id: 1, method: 'gone', params: {} }), /404|no session/);
    // A redirect goes to the SDK's path, which POSTs again and follows it (same origin): /mcp twice, /mcp2 once.
    await c.t.send({ jsonrpc: '2.0', id: 3, method: 'moved', params: {} });
    assert.equal(up.seen.filter((r) => r.body.method === 'moved').length, 3);
    await c.t.send({ jsonrpc: '2.0', id: 2, method: 'bad', params: {} });
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(c.got, []);
    assert.ok(c.errors.length >= 3, 'the 404 and both messages with an unknown key are reported');
  } finally {
    await c.close();
    await up.close();
  }
});

test('upstreamMessage: the hand-checked result shape, and the SDK schema for everything else', () => {
  assert.deepEqual(upstreamMessage('{"jsonrpc":"2.0","id":"a","result":{"x":1}}'), {
    jsonrpc: '2.0',
    id: 'a',
    result: { x: 1 },
  });
  assert.throws(() => upstreamMessage('{"jsonrpc":"2.0","id":1.5,"result":{}}'));
  assert.throws(() => upstreamMessage('{"jsonrpc":"1.0","id":1,"result":{}}'));
  assert.throws(() => upstreamMessage('{"jsonrpc":"2.0","id":1,"result":[]}'));
  assert.deepEqual(upstreamMessage('{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}}'), {
    jsonrpc: '2.0',
    id: 1,
    error: { code: -1, message: 'm' },
  });
});

test('upstream transport fast path: a reused keep-alive socket reset before an answer is retried once on a new one', async () => {
  const perSocket = new Map<unknown, number>();
  let resets = 0;
  let answered = 0;
  const server = http.createServer((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    req.resume();
    req.on('end', () => {
      // The second request on a connection meets a socket the server is dropping (the keep-alive race).
      if (n === 2 && resets === 0) {
        resets++;
        req.socket.resetAndDestroy();
        return;
      }
      answered++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`data: {"jsonrpc":"2.0","id":${answered},"result":{}}\n\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const c = await transportFor(new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`));
  try {
    await c.t.send({ jsonrpc: '2.0', id: 1, method: 'a', params: {} });
    await new Promise((r) => setTimeout(r, 50));
    await c.t.send({ jsonrpc: '2.0', id: 2, method: 'b', params: {} });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(resets, 1);
    assert.equal(answered, 2);
    assert.deepEqual(c.errors, []);
    assert.equal(c.got.length, 2);
  } finally {
    await c.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
