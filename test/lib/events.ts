import { createHash, randomUUID } from 'node:crypto';

/** A small deterministic PRNG (mulberry32) so generated traffic is reproducible from a seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOOLS = [
  'read_file',
  'write_file',
  'list_directory',
  'search_files',
  'query',
  'create_issue',
  'send_email',
  'echo',
];
const SERVERS = ['filesystem', 'github', 'postgres', 'everything'];
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export interface GenOptions {
  sourceId?: string;
  sourceType?: 'gateway' | 'sdk';
  clients?: number;
  clientPrefix?: string;
  /** Spread of ts before now, in ms. */
  spreadMs?: number;
  now?: number;
}

/** A valid, fully populated v1 event, varied by `r`. */
export function makeEvent(r: () => number, i: number, o: GenOptions = {}): Record<string, unknown> {
  const now = o.now ?? Date.now();
  const n = Math.floor(r() * (o.clients ?? 20));
  const client = `${o.clientPrefix ?? 'client'}-${n}`;
  const tool = TOOLS[Math.floor(r() * TOOLS.length)]!;
  const server = SERVERS[Math.floor(r() * SERVERS.length)]!;
  const outcomeRoll = r();
  const outcome = outcomeRoll < 0.9 ? 'ok' : outcomeRoll < 0.97 ? 'error' : 'denied';
  const ts = new Date(now - Math.floor(r() * (o.spreadMs ?? 3_600_000))).toISOString();
  const ev: Record<string, unknown> = {
    schema_version: 1,
    event_id: randomUUID(),
    ts,
    kind: 'tool_call',
    source: { type: o.sourceType ?? 'gateway', id: o.sourceId ?? 'gw-test', version: '0.1.0' },
    client: {
      id: client,
      name: `Client ${client}`,
      // NOTE: user, address and sessions stay with their client, as real traffic does; the periodic
      // session-misuse detector would otherwise flag every test batch stored in the shared table.
      user: `user${n}@example.com`,
      agent: 'claude-desktop',
      ip: `10.0.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`,
      user_agent: 'mcp-client/1.0',
      session_id: `${client}-sess-${Math.floor(r() * 5)}`,
    },
    server: { name: server, version: '1.2.3', transport: r() < 0.5 ? 'stdio' : 'http' },
    method: 'tools/call',
    tool: { name: tool, definition_hash: sha(`${server}/${tool}`) },
    outcome,
    http_status: 200,
    tool_is_error: outcome === 'error',
    trace_id: sha(String(i)).slice(0, 32),
    auth: { method: 'api_key', result: 'success' },
    duration_ms: Math.floor(r() * 2000),
    request_bytes: Math.floor(r() * 5000),
    response_bytes: Math.floor(r() * 50000),
    args: { path: `/srv/data/file-${i}.txt`, limit: Math.floor(r() * 100), recursive: r() < 0.5 },
    response_digest: sha(`resp-${i}`),
    labels: { env: 'test', team: `team-${Math.floor(r() * 3)}` },
  };
  if (outcome === 'error') {
    ev.error = { code: 'TOOL_ERROR', message: `could not read /srv/data/file-${i}.txt` };
    ev.rpc_error_code = -32603;
  }
  return ev;
}
