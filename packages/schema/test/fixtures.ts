// Events and helpers the parser's tests share (parse.hostile, parse.equivalence, parse.compiled).

export type Obj = Record<string, unknown>;

/** `now` for parseEvent in the parser tests: two seconds after the fixtures' timestamp. */
export const NOW = Date.parse('2026-11-21T10:00:00.000Z');

/**
 * A fully populated, valid gateway tool call, fresh on every call so that a test may break one thing
 * in it; `client` members replace (or, set to undefined, remove) the default ones.
 */
export function gatewayToolCall(client: Record<string, string | undefined> = {}): Obj {
  const c: Obj = {
    id: 'client-acme-claude',
    name: 'ACME Claude Desktop',
    user: 'alice@acme.example',
    agent: 'claude-desktop',
    ip: '203.0.113.7',
    user_agent: 'claude-desktop/0.9 (mcp-client)',
    session_id: 'sess-8f2c',
  };
  for (const [k, v] of Object.entries(client)) {
    if (v === undefined) delete c[k];
    else c[k] = v;
  }
  return {
    schema_version: 1,
    event_id: '0193a5e0-7c1d-7b2a-9f00-3c5d6e7f8a9b',
    ts: '2026-11-21T09:59:58.123Z',
    kind: 'tool_call',
    source: { type: 'gateway', id: 'gw-eu-1', version: '0.4.2' },
    client: c,
    server: { name: 'filesystem', version: '2025.1.0', transport: 'stdio' },
    method: 'tools/call',
    tool: { name: 'read_file', definition_hash: 'a'.repeat(64) },
    outcome: 'ok',
    http_status: 200,
    tool_is_error: false,
    trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    auth: { method: 'oauth', result: 'success' },
    duration_ms: 42,
    request_bytes: 180,
    response_bytes: 2048,
    args: { path: '/srv/data/report.txt', options: { encoding: 'utf8', lines: [1, 2, 3] } },
    response_digest: 'b'.repeat(64),
    labels: { env: 'prod', team: 'platform' },
  };
}

/** A value that, set at a path, removes the member instead. */
export const DELETE = Symbol('delete');

/** Sets (a copy of) `v` at a dotted path of `e`; a path through a non-object is left alone. */
export function setPath(e: Obj, path: string, v: unknown): void {
  const keys = path.split('.');
  let o: Obj = e;
  for (const k of keys.slice(0, -1)) {
    const next = o[k];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) return;
    o = next as Obj;
  }
  const last = keys[keys.length - 1]!;
  if (v === DELETE) delete o[last];
  // A copy: the special values are shared by every run, and later edits write into what they set.
  else o[last] = structuredClone(v);
}
