import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createUpstreamFetch } from '../src/upstreams.js';

/** An upstream that answers /json at once and holds /stream open (an SSE GET stream) until closed. */
async function upstream() {
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
      held.push(res);
      return;
    }
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-echo-method': req.method ?? '' });
      res.end(JSON.stringify({ got: body, auth: req.headers.authorization ?? null }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

test('upstream fetch: status, headers and body as the SDK transport reads them; listeners released per request', async () => {
  const up = await upstream();
  const f = createUpstreamFetch();
  try {
    const signal = new AbortController().signal;
    for (let i = 0; i < 50; i++) {
      const res = await f(`${up.base}/json`, {
        method: 'POST',
        headers: { authorization: 'Bearer upstream-secret', 'content-type': 'application/json' },
        body: JSON.stringify({ i }),
        signal,
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-echo-method'), 'POST');
      assert.deepEqual(await res.json(), { got: JSON.stringify({ i }), auth: 'Bearer upstream-secret' });
      // The session's shared signal keeps no listener once a request is over (Node's fetch keeps
      // one per request until garbage collection: thousands under load, and a warning flood).
      await new Promise((r) => setImmediate(r));
      assert.equal(getEventListeners(signal, 'abort').length, 0, `after request ${i}`);
    }
  } finally {
    f.close();
    await up.close();
  }
});

// A cap would leave requests queued forever: the timeout turns that into a failure.
test(
  'upstream fetch: no cap on sockets per upstream (each session holds one for its GET stream); abort ends streams',
  { timeout: 20_000 },
  async () => {
    const up = await upstream();
    const f = createUpstreamFetch();
    const ac = new AbortController();
    try {
      const streams = await Promise.all(
        Array.from({ length: 80 }, () => f(`${up.base}/stream`, { signal: ac.signal })),
      );
      assert.equal(up.held.length, 80);
      assert.ok(
        streams.every((s) => s.status === 200 && s.headers.get('content-type') === 'text/event-stream'),
      );
      // With 80 streams open, a request still goes straight through.
      const res = await f(`${up.base}/json`, { method: 'POST', body: '{}' });
      assert.equal(res.status, 200);
      await res.text();
      // Closing the session aborts its streams: readers see an error instead of hanging.
      const reader = streams[0]!.body!.getReader();
      assert.equal(new TextDecoder().decode((await reader.read()).value), ': open\n\n');
      ac.abort();
      await assert.rejects(reader.read(), /abort/i);
    } finally {
      f.close();
      await up.close();
    }
  },
);
