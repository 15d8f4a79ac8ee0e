import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { generateKey, hashKey } from '@mcp-audit/service-kit';
import { CLIENT_KEY_PREFIX } from '../src/client-keys.js';
import { RPC_RATE_LIMITED } from '../src/mcp-proxy.js';
import { FIXTURE } from './helpers.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

/** The gateway launched by an MCP client as if it were the server (stdio front), key from the env. */
function launch(
  apiKey: string | undefined,
  key: string,
  rateLimit?: { per_second?: number; burst?: number },
) {
  const dir = mkdtempSync(join(tmpdir(), 'gw-stdio-'));
  const config = join(dir, 'gateway.json');
  writeFileSync(
    config,
    JSON.stringify({
      gateway_id: 'gw-stdio-test',
      upstreams: [{ name: 'fixture', transport: 'stdio', command: 'node', args: [FIXTURE] }],
      clients: [{ id: 'desktop', sha256: hashKey(key), ...(rateLimit ? { rate_limit: rateLimit } : {}) }],
      guard: { enabled: true, state_file: join(dir, 'state.json') },
    }),
  );
  return new StdioClientTransport({
    command: process.execPath,
    args: [MAIN],
    stderr: 'ignore',
    env: {
      MCP_AUDIT_GATEWAY_MODE: 'stdio',
      MCP_AUDIT_GATEWAY_CONFIG: config,
      ...(apiKey ? { MCP_AUDIT_GATEWAY_API_KEY: apiKey } : {}),
      // Nothing listens there: events stay buffered; this test is about the MCP side.
      MCP_AUDIT_SDK_SINK: 'collector',
      MCP_AUDIT_SDK_COLLECTOR_URL: 'http://127.0.0.1:9',
      MCP_AUDIT_SDK_COLLECTOR_TOKEN: 'unused-token-0123456789',
      MCP_AUDIT_LOG_LEVEL: 'silent',
    },
  });
}

test('stdio front: a client launching the gateway reaches the upstream; stdout carries only MCP', async () => {
  const key = generateKey(CLIENT_KEY_PREFIX);
  const client = new Client({ name: 'desktop', version: '1' });
  await client.connect(launch(key, key));
  assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), [
    'echo',
    'get_weather',
    'rug_pull',
  ]);
  const r = await client.callTool({ name: 'echo', arguments: { message: 'over stdio' } });
  assert.deepEqual(r.content, [{ type: 'text', text: 'fixture echo: over stdio' }]);
  await client.close();
});

test('stdio front: without a valid key from the environment every request is refused', async () => {
  const client = new Client({ name: 'desktop', version: '1' });
  await assert.rejects(
    client.connect(launch('mcpg_wrong_key_0000000000', generateKey(CLIENT_KEY_PREFIX))),
    /MCP_AUDIT_GATEWAY_API_KEY/,
  );
  await client.close();
});

test("stdio front: the client's own rate_limit applies in band (JSON-RPC -32029 past its burst)", async () => {
  const key = generateKey(CLIENT_KEY_PREFIX);
  const client = new Client({ name: 'desktop', version: '1' });
  // The gateway default is a burst of 100; this client's is 3: initialize, tools/list, one call.
  await client.connect(launch(key, key, { per_second: 0.001, burst: 3 }));
  await client.listTools();
  await client.callTool({ name: 'echo', arguments: { message: 'within' } });
  await assert.rejects(
    client.callTool({ name: 'echo', arguments: { message: 'over' } }),
    (err: { code?: number }) => err.code === RPC_RATE_LIMITED,
  );
  await client.close();
});
