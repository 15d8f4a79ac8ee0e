import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ClickHouseRequestError, createClickHouse, isStaleSocket, sql } from '../src/index.js';

// An HTTP server that hangs up on the first `hangUps` requests (the socket destroyed before any
// answer, as a server closing a kept-alive connection looks to the client) and answers the rest as
// ClickHouse answers a JSONEachRow query.
async function flakyServer(hangUps: number): Promise<{ server: Server; url: string; seen: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    n++;
    req.resume();
    req.on('end', () => {
      if (n <= hangUps) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'x-clickhouse-format': 'JSONEachRow' });
      res.end('{"ok":1}\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, seen: () => n };
}

const client = (url: string) =>
  createClickHouse({
    url,
    username: 'reader',
    password: 'x',
    database: 'mcp_audit',
    requestTimeoutMs: 5_000,
  });

test('a read whose socket is hung up is tried once more on a fresh one', async () => {
  const { server, url, seen } = await flakyServer(1);
  const ch = client(url);
  try {
    assert.deepEqual(await ch.query(sql`SELECT 1 AS ok`), [{ ok: 1 }]);
    assert.equal(seen(), 2);
  } finally {
    await ch.close();
    server.close();
  }
});

test('only once: a server that keeps hanging up is an error after the second try', async () => {
  const { server, url, seen } = await flakyServer(10);
  const ch = client(url);
  try {
    await assert.rejects(ch.query(sql`SELECT 1 AS ok`), (err: unknown) => {
      assert.ok(err instanceof ClickHouseRequestError);
      assert.ok(isStaleSocket((err as Error).cause), String((err as Error).cause));
      return true;
    });
    assert.equal(seen(), 2);
  } finally {
    await ch.close();
    server.close();
  }
});

test('a read with a query id is not repeated (the server may still run the first)', async () => {
  const { server, url, seen } = await flakyServer(1);
  const ch = client(url);
  try {
    await assert.rejects(ch.query(sql`SELECT 1 AS ok`, { queryId: 'q-1' }), ClickHouseRequestError);
    assert.equal(seen(), 1);
  } finally {
    await ch.close();
    server.close();
  }
});

test('isStaleSocket: resets and hang-ups, not server errors', () => {
  assert.equal(isStaleSocket(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })), true);
  assert.equal(isStaleSocket(new Error('socket hang up')), true);
  assert.equal(isStaleSocket(new Error('Code: 60. DB::Exception: Table mcp_audit.x does not exist')), false);
  assert.equal(isStaleSocket(undefined), false);
});
