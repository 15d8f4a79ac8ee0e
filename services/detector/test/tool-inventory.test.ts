import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toolAnnotationsText } from '@mcp-audit/schema';
import { parseDetectorConfig } from '../src/config.js';
import { findFlows, newShadowing } from '../src/periodic/index.js';
import {
  classifyAnnotations,
  classifyCall,
  classifyTool,
  riskierAnnotations,
  ToolClassOverrides,
  type Classification,
} from '../src/tool-inventory.js';

const t = toolAnnotationsText;

test('classification from annotations: unannotated is unclassified, never destructive or open-world', () => {
  const cls = (a: Parameters<typeof classifyAnnotations>[0]) => classifyAnnotations(a).class;
  assert.equal(cls(undefined), 'unclassified');
  assert.equal(cls({}), 'unclassified');
  assert.equal(cls({ title: 'x' }), 'unclassified');
  assert.equal(cls({ readOnlyHint: true, openWorldHint: false }), 'read_private');
  assert.equal(cls({ readOnlyHint: true }), 'read_only');
  assert.equal(cls({ readOnlyHint: true, openWorldHint: true }), 'read_only', 'a web search sends nothing');
  assert.equal(cls({ openWorldHint: true }), 'send_out');
  assert.equal(cls({ readOnlyHint: false, destructiveHint: true }), 'destructive');
  assert.equal(
    cls({ readOnlyHint: true, destructiveHint: true }),
    'read_only',
    'destructive is meaningless when read-only',
  );
  const both = classifyAnnotations({ destructiveHint: true, openWorldHint: true });
  assert.deepEqual([both.class, both.destructive, both.sendsOut], ['destructive', true, true]);
  assert.equal(classifyAnnotations(undefined).destructive, false);
  assert.equal(classifyAnnotations(undefined).sendsOut, false);
});

test('overrides by server and tool name win over annotations; the most specific match wins', () => {
  const overrides = ToolClassOverrides.parse([
    { tool: 'send_email', class: 'send_out' },
    { server: 'mail', tool: 'send_email', class: 'read_only' },
    { server: 'legacy', class: 'destructive' },
  ]);
  assert.equal(classifyTool(overrides, 'other', 'send_email', undefined).class, 'send_out');
  assert.equal(classifyTool(overrides, 'mail', 'send_email', { openWorldHint: true }).class, 'read_only');
  const legacy = classifyTool(overrides, 'legacy', 'anything', { readOnlyHint: true });
  assert.deepEqual([legacy.class, legacy.destructive, legacy.basis], ['destructive', true, 'override']);
  assert.equal(classifyTool(overrides, 'x', 'y', { readOnlyHint: true }).basis, 'annotations');
  assert.throws(() => ToolClassOverrides.parse([{ tool: 'x', class: 'evil' }]), /class/);
});

test('detector config: toolClasses and the new detectors have defaults; bad values are refused with the path', () => {
  const cfg = parseDetectorConfig({});
  assert.deepEqual(cfg.periodic.toolClasses, []);
  assert.equal(cfg.periodic.toxicFlow.windowMs, 5 * 60_000);
  assert.equal(cfg.periodic.toxicFlow.lookbackMs, 60 * 60_000);
  assert.equal(cfg.periodic.toolShadowing.expireMs, 24 * 60 * 60_000);
  assert.throws(
    () => parseDetectorConfig({ periodic: { toolClasses: [{ tool: 'x', class: 'nope' }] } }),
    /periodic\.toolClasses\.0\.class/,
  );
});

test('a call is classed by its own annotations, else by the latest listing, an override over both', () => {
  const inventory = new Map([
    [
      'files/read_file',
      {
        server: 'files',
        tool: 'read_file',
        annotations: t({ readOnlyHint: true, openWorldHint: false }),
        lastListed: 1,
      },
    ],
  ]);
  assert.equal(
    classifyCall([], inventory, { server: 'files', tool: 'read_file', annotations: '' }).class,
    'read_private',
  );
  assert.equal(
    classifyCall([], inventory, {
      server: 'files',
      tool: 'read_file',
      annotations: t({ openWorldHint: true }),
    }).class,
    'send_out',
  );
  assert.equal(
    classifyCall([], inventory, { server: 'files', tool: 'other', annotations: '' }).class,
    'unclassified',
  );
});

test('annotation drift: only moves towards risk, and never from no annotations', () => {
  assert.deepEqual(
    riskierAnnotations(t({ readOnlyHint: true }), t({ readOnlyHint: false, destructiveHint: true })),
    ['no longer read-only', 'now destructive'],
  );
  assert.deepEqual(riskierAnnotations(t({ openWorldHint: false }), t({ openWorldHint: true })), [
    'no longer closed-world',
  ]);
  assert.deepEqual(riskierAnnotations(t({ destructiveHint: true }), t({ readOnlyHint: true })), []);
  assert.deepEqual(
    riskierAnnotations(t({ title: 'a', readOnlyHint: true }), t({ title: 'b', readOnlyHint: true })),
    [],
  );
  assert.deepEqual(riskierAnnotations('', t({ destructiveHint: true })), []);
  assert.deepEqual(riskierAnnotations(t({ readOnlyHint: true }), ''), ['no longer read-only']);
});

const cls = (a: Parameters<typeof classifyAnnotations>[0]): Classification => classifyAnnotations(a);
const READ = cls({ readOnlyHint: true, openWorldHint: false });
const SEND = cls({ openWorldHint: true });
const NONE = cls(undefined);

test('findFlows: a private read then a send in one session; only-read, only-send and other sessions stay quiet', () => {
  const call = (id: string, t: number, session: string, tool: string, c: Classification) => ({
    id,
    t,
    client: 'c',
    session,
    server: 'srv',
    tool,
    annotations: '',
    cls: c,
  });
  const calls = [
    call('a1', 100, 's1', 'read_file', READ),
    call('a2', 200, 's1', 'send_email', SEND),
    call('a3', 300, 's1', 'send_email', SEND),
    call('b1', 100, 's2', 'read_file', READ),
    call('b2', 150, 's2', 'read_file', READ),
    call('c1', 100, 's3', 'send_email', SEND),
    call('d1', 100, 's4', 'send_email', SEND),
    call('d2', 200, 's4', 'read_file', READ),
    call('e1', 100, 's5', 'unknown', NONE),
    call('e2', 200, 's5', 'send_email', SEND),
    call('f1', 100, 's6', 'read_file', READ),
    call('g1', 200, 's7', 'send_email', SEND),
  ];
  const flows = findFlows(calls, 0, 1000);
  assert.deepEqual(
    flows.map((f) => [f.session, f.read.id, f.send.id, f.sends.map((s) => s.id)]),
    [['s1', 'a1', 'a2', ['a2', 'a3']]],
  );
  assert.equal(
    findFlows(calls, 250, 1000).length,
    0,
    'a send before the window was judged in its own window',
  );
  assert.equal(findFlows(calls, 0, 50).length, 0, 'a read longer than lookbackMs before the send is no flow');
});

test('newShadowing: a second server offering the name to the client, once', () => {
  const f = (server: string, first: number, client = 'c', tool = 'search') => ({
    client,
    tool,
    server,
    first,
    sources: ['gw'],
    id: `${server}-${first}`,
  });
  const firsts = [f('a', 10), f('b', 120), f('a', 10, 'd'), f('c', 500)];
  assert.deepEqual(
    newShadowing(firsts, 100, 200).map((s) => [
      s.client,
      s.tool,
      s.servers.map((x) => x.server),
      s.added.map((x) => x.server),
    ]),
    [['c', 'search', ['a', 'b'], ['b']]],
  );
  assert.equal(newShadowing(firsts, 200, 300).length, 0, 'an already shadowed set stays quiet');
  assert.deepEqual(
    newShadowing(firsts, 400, 600)[0]?.added.map((x) => x.server),
    ['c'],
    'a third server is new',
  );
  assert.equal(
    newShadowing([f('a', 10), f('a', 150)], 100, 200).length,
    0,
    'one server relisting is no shadowing',
  );
});
