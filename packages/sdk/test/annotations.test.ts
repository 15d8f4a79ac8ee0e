import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { parseEvent } from '@mcp-audit/schema';
import { createLogger } from '@mcp-audit/service-kit';
import { auditMcpServer, createAuditEmitter, defaultTextRedactor, eventAnnotations } from '../src/index.js';
import { MemorySink } from './memory-sink.js';

const silent = createLogger('sdk-test', { level: 'silent' });

/** A real MCP server whose tools declare annotations, one of them none. */
function annotatedServer(): McpServer {
  const server = new McpServer({ name: 'files', version: '1.0.0' });
  server.registerTool(
    'read_file',
    {
      description: 'Read a file',
      inputSchema: { path: z.string() },
      annotations: { title: 'Read file', readOnlyHint: true, openWorldHint: false },
    },
    async ({ path }) => ({ content: [{ type: 'text', text: `contents of ${path}` }] }),
  );
  server.registerTool(
    'delete_file',
    {
      description: 'Delete a file',
      inputSchema: { path: z.string() },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true },
    },
    async () => ({ content: [{ type: 'text', text: 'deleted' }] }),
  );
  server.registerTool('plain', { description: 'No annotations' }, async () => ({
    content: [{ type: 'text', text: 'ok' }],
  }));
  return server;
}

describe('tool annotations through auditMcpServer', () => {
  it('tool_list events carry what tools/list returned, and tool_call events the annotations of their tool', async () => {
    const sink = new MemorySink();
    const audit = createAuditEmitter({
      sink,
      source: { type: 'sdk', id: 'sdk-annotations-test', version: '9.9.9' },
      flushIntervalMs: 5,
      logger: silent,
    });
    const server = auditMcpServer(annotatedServer(), { emitter: audit, sourceId: 'sdk-annotations-test' });
    const [clientT, serverT] = InMemoryTransport.createLinkedPair();
    await server.connect(serverT);
    const client = new Client({ name: 'annotations-client', version: '1.0.0' });
    await client.connect(clientT);

    const listed = await client.listTools();
    await client.callTool({ name: 'delete_file', arguments: { path: '/tmp/x' } });
    await client.callTool({ name: 'plain', arguments: {} });
    await audit.flush();
    for (const e of sink.events) {
      const r = parseEvent(JSON.stringify(e));
      assert.ok(r.ok, r.ok ? '' : r.reason);
    }

    const lists = sink.events.filter((e) => e.kind === 'tool_list');
    assert.equal(lists.length, 1 + listed.tools.length);
    assert.equal(lists.filter((e) => e.tool === undefined).length, 1, 'the request event');
    const listedAs = (name: string) => lists.find((e) => e.tool?.name === name)?.tool;
    for (const t of listed.tools) assert.deepEqual(listedAs(t.name)?.annotations, t.annotations, t.name);
    assert.deepEqual(listedAs('read_file')?.annotations, {
      title: 'Read file',
      readOnlyHint: true,
      openWorldHint: false,
    });
    assert.equal(listedAs('plain')?.annotations, undefined, 'unannotated stays unannotated');
    assert.equal(listedAs('plain')?.name, 'plain');

    const call = (name: string) => sink.events.find((e) => e.kind === 'tool_call' && e.tool?.name === name);
    assert.deepEqual(call('delete_file')?.tool?.annotations, {
      readOnlyHint: false,
      destructiveHint: true,
      idempotentHint: true,
    });
    assert.equal(call('delete_file')?.tool?.definition_hash, listedAs('delete_file')?.definition_hash);
    assert.equal(call('plain')?.tool?.annotations, undefined);
    await client.close();
    await audit.close();
  });
});

describe('eventAnnotations', () => {
  it('redacts a secret in a title and keeps only typed hints', () => {
    const a = eventAnnotations(
      { title: 'token ghp_0123456789abcdefghijklmnopqrstuvwxyzAB', readOnlyHint: 'no', openWorldHint: true },
      defaultTextRedactor,
    );
    assert.ok(a);
    assert.doesNotMatch(a.title ?? '', /ghp_0123456789/);
    assert.equal(a.openWorldHint, true);
    assert.equal('readOnlyHint' in a, false);
    assert.equal(eventAnnotations(undefined, defaultTextRedactor), undefined);
  });
});
