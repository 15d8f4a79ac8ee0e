import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_TOOL_TITLE_LENGTH,
  parseEvent,
  toolAnnotationsFromText,
  toolAnnotationsOf,
  toolAnnotationsText,
  toolDefinitionHash,
  type AuditEventV1,
  type ParseResult,
} from '../src/index.js';

const NOW = Date.parse('2026-11-21T10:00:00.000Z');
const hash = toolDefinitionHash({ name: 'delete_file', description: 'Delete a file' });

const listed: AuditEventV1 = {
  schema_version: 1,
  event_id: '0193a5e0-0000-7000-8000-0000000000a1',
  ts: '2026-11-21T09:00:00.000Z',
  kind: 'tool_list',
  source: { type: 'gateway', id: 'gw-eu-1', version: '0.4.2' },
  client: { id: 'c', session_id: 's1' },
  server: { name: 'filesystem', transport: 'http' },
  method: 'tools/list',
  tool: {
    name: 'delete_file',
    definition_hash: hash,
    annotations: { title: 'Delete a file', readOnlyHint: false, destructiveHint: true, openWorldHint: false },
  },
  outcome: 'ok',
  duration_ms: 3,
  request_bytes: 40,
  response_bytes: 900,
};

function parse(e: unknown): ParseResult {
  return parseEvent(JSON.stringify(e), { now: NOW });
}

function issues(e: unknown): string {
  const res = parse(e);
  assert.equal(res.ok, false, 'expected a rejection');
  return res.ok ? '' : res.reason;
}

describe('tool.annotations and tool_list events', () => {
  it('a listed tool with its annotations, and the request event without tool, are accepted as is', () => {
    const res = parse(listed);
    assert.ok(res.ok, res.ok ? '' : res.reason);
    assert.deepStrictEqual(res.event, listed);
    const { tool: _tool, ...request } = listed;
    assert.ok(parse(request).ok);
    const unannotated = { ...listed, tool: { name: 'delete_file', definition_hash: hash } };
    assert.ok(parse(unannotated).ok);
  });

  it('a tool_call carries the annotations of its tool', () => {
    const call = { ...listed, kind: 'tool_call', method: 'tools/call' };
    assert.ok(parse(call).ok);
  });

  it('refuses a listed tool without its definition hash, naming the field', () => {
    assert.match(
      issues({ ...listed, tool: { name: 'delete_file' } }),
      /tool\.definition_hash: Required when a tools\/list event names a tool/,
    );
    const admin = { ...listed, method: 'admin/tools/approve', tool: { name: 'delete_file' } };
    assert.ok(parse(admin).ok, 'a tool_list event that is no listing needs no hash');
  });

  it('refuses annotations on kinds other than tool_call and tool_list', () => {
    assert.match(
      issues({ ...listed, kind: 'resource_read', method: 'resources/read' }),
      /tool\.annotations: only allowed when kind is tool_call or tool_list/,
    );
  });

  it('refuses hints that are not booleans and a title that is too long or holds control characters', () => {
    const withAnn = (annotations: unknown) => ({ ...listed, tool: { ...listed.tool, annotations } });
    assert.match(
      issues(withAnn({ readOnlyHint: 'true' })),
      /tool\.annotations\.readOnlyHint: must be a boolean/,
    );
    assert.match(
      issues(withAnn({ destructiveHint: 1 })),
      /tool\.annotations\.destructiveHint: must be a boolean/,
    );
    assert.match(
      issues(withAnn({ title: 'x'.repeat(MAX_TOOL_TITLE_LENGTH + 1) })),
      new RegExp(`tool\\.annotations\\.title: must be at most ${MAX_TOOL_TITLE_LENGTH} characters`),
    );
    assert.ok(parse(withAnn({ title: 'x'.repeat(MAX_TOOL_TITLE_LENGTH) })).ok);
    assert.match(issues(withAnn({ title: 'a\nb' })), /tool\.annotations\.title: must not contain control/);
    assert.match(issues(withAnn([true])), /tool\.annotations: must be an object, got array/);
  });

  it('strips annotation members MCP may add later', () => {
    const res = parse({
      ...listed,
      tool: { ...listed.tool, annotations: { readOnlyHint: true, futureHint: 3 } },
    });
    assert.ok(res.ok);
    assert.deepStrictEqual(res.event.tool?.annotations, { readOnlyHint: true });
  });
});

describe('toolAnnotationsOf / toolAnnotationsText', () => {
  it('keeps the typed members of what a server returned, drops the rest', () => {
    assert.deepStrictEqual(
      toolAnnotationsOf({
        readOnlyHint: 'yes',
        destructiveHint: true,
        title: `a\u0007b${'c'.repeat(300)}`,
        x: 1,
      }),
      { destructiveHint: true, title: `a b${'c'.repeat(MAX_TOOL_TITLE_LENGTH - 3)}` },
    );
    for (const v of [undefined, null, 'x', [], {}, { title: '  ' }, { readOnlyHint: null }])
      assert.equal(toolAnnotationsOf(v), undefined, JSON.stringify(v));
  });

  it('stores canonical text: equal annotations equal text, absent is empty, and it reads back', () => {
    const a = toolAnnotationsText({ openWorldHint: true, readOnlyHint: false });
    const b = toolAnnotationsText({ readOnlyHint: false, openWorldHint: true });
    assert.equal(a, '{"openWorldHint":true,"readOnlyHint":false}');
    assert.equal(a, b);
    assert.equal(toolAnnotationsText(undefined), '');
    assert.deepStrictEqual(toolAnnotationsFromText(a), { readOnlyHint: false, openWorldHint: true });
    assert.equal(toolAnnotationsFromText(''), undefined);
    assert.equal(toolAnnotationsFromText('{not json'), undefined);
  });
});

describe('toolAnnotationsFromText', () => {
  it('reads an empty annotations object back as one, and refuses invalid stored text', () => {
    assert.equal(toolAnnotationsText({}), '{}');
    assert.deepStrictEqual(toolAnnotationsFromText('{}'), {});
    assert.equal(toolAnnotationsFromText('{"readOnlyHint":"yes"}'), undefined);
  });
});
