/**
 * Scenario generator for the detector's quality measurement (issue 5, "Quality, measured").
 *
 * Deterministic: the same options (seed, prefix, end, sizes) give the same events, ids and labels.
 * It writes weeks of realistic MCP audit traffic for dozens of clients with different habits and
 * injects labelled anomalies of every detector kind into the last week (the evaluation period),
 * after the clients have history, plus a few into brand-new clients for detectors needing none.
 *
 * What counts as NORMAL (never labelled, the detector must stay quiet):
 * - office humans in several IANA zones (one crossing a DST change inside the period), 08–18 local on
 *   workdays, lunch dip, sometimes a few calls until ~19:30; nothing on weekends or the holiday;
 * - 24/7 service agents, nightly batch jobs at 02:00 local, weekday-only bots, weekend-only users,
 *   noisy clients whose hourly volume varies by a factor of ~3 (log-normal, sigma 0.8) with bursts;
 * - brand-new clients appearing in the last days (everything they do is new to them);
 * - heavy-tailed response bytes (log-normal per tool), ~2% failed calls (6% for noisy clients);
 * - a single authentication failure followed within seconds by a success from the client's usual
 *   address and session (a typo, or a token refreshed a moment late): ~8% of human sessions, ~1% of
 *   agents'. This is deliberately NOT labelled: it is what every login page sees every day, and an
 *   auth_fail_then_success detector that fires on it would page on every typo. The labelled
 *   auth_fail_then_success anomalies are several failures from an address the client never used,
 *   then a success (a guessed or stuffed credential);
 * - tool_list events with stable definition hashes at every session start;
 * - gateways that serve office clients go quiet every night, weekend and on the holiday: that is not
 *   a silent source. The steady sources are `gw-core` and `sdk-agents`.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync, createWriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { validateEvent } from '@mcp-audit/schema';
import { DAY, HOUR, localHour, localParts, localToUtc, zoneWithTransition } from './tz.js';

// ---- public shapes --------------------------------------------------------------------------------

export const DETECTOR_KINDS = [
  'tool_breadth',
  'new_tool',
  'volume',
  'off_hours',
  'auth_burst',
  'auth_spray',
  'auth_fail_then_success',
  'error_rate',
  'error_burst',
  'secret_in_args',
  'tool_drift',
  'silent_source',
  'session_misuse',
  'toxic_flow',
  'tool_shadowing',
  'first_destructive_use',
] as const;
export type DetectorKind = (typeof DETECTOR_KINDS)[number];

export type Archetype =
  'office' | 'agent' | 'batch' | 'weekday' | 'weekend' | 'noisy' | 'new_office' | 'new_agent';

export interface ScenarioOptions {
  seed: number;
  /** Total length of the period in days (history + evaluation). */
  days: number;
  clients: number;
  /** Unique per run: every client id, source id, server name and session id starts with it. */
  prefix: string;
  /** End of the evaluation period (epoch ms, start of a UTC day). */
  end: number;
  /** Length of the evaluation period (the last days), where anomalies are placed. */
  evalDays: number;
  /** Brand-new clients appear this many days before the end. */
  newClientDays: number;
  /** Normal traffic continues this long after `end` so event-time windows close. */
  tailMs: number;
}

export interface Label {
  id: string;
  detector: DetectorKind;
  /** The client the anomaly is about, or the subject for detectors keyed otherwise. */
  client_id: string;
  /** Every identifier an alert for this anomaly may carry as its client_id / in its dedup key. */
  subjects: string[];
  /** Every client whose traffic the anomaly touches (for telling secondary alerts from false ones). */
  clients: string[];
  start: string;
  end: string;
  first_event_id: string | null;
  cold_start: boolean;
  variant?: string;
  description: string;
}

export interface ClientInfo {
  id: string;
  archetype: Archetype;
  tz: string;
  source: string;
  servers: string[];
  tools: string[];
  address: string;
  user: string;
  /** First instant with traffic (epoch ms). */
  since: number;
  labels: Record<string, string>;
}

export interface Manifest {
  prefix: string;
  seed: number;
  start: string;
  evalStart: string;
  end: string;
  tailEnd: string;
  days: number;
  evalDays: number;
  holiday: { date: string; name: string };
  dstZone: { tz: string; at: string } | null;
  addressPrefix: string;
  sources: Array<{ id: string; type: 'gateway' | 'sdk'; steady: boolean }>;
  servers: string[];
  clients: ClientInfo[];
  /** Client-days (client × UTC day) with at least one unlabelled event, per period. */
  normalClientDays: { history: number; eval: number };
  /** Per client, the UTC days (YYYY-MM-DD) of the evaluation period with unlabelled traffic. */
  evalActiveDays: Record<string, string[]>;
  events: { total: number; history: number; eval: number; tail: number; anomalous: number };
}

export type ScenarioEvent = Record<string, unknown> & { event_id: string; ts: string };

export interface Scenario {
  options: ScenarioOptions;
  /** Sorted by ts. */
  events: ScenarioEvent[];
  labels: Label[];
  manifest: Manifest;
}

// ---- randomness -------------------------------------------------------------------------------------

/** mulberry32 */
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
type Rand = () => number;

export const hash32 = (s: string): number => createHash('sha256').update(s).digest().readUInt32BE(0);
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function gauss(r: Rand): number {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}
const logNormal = (r: Rand, median: number, sigma: number) => median * Math.exp(sigma * gauss(r));

export function poisson(r: Rand, lambda: number): number {
  if (lambda <= 0) return 0;
  if (lambda > 40) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * gauss(r)));
  const l = Math.exp(-lambda);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= r();
  } while (p > l);
  return k - 1;
}
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** UUIDv7 from an instant and 74 random bits of `r`. */
function uuidv7(ms: number, r: Rand): string {
  const hex = (n: number, len: number) => Math.floor(n).toString(16).padStart(len, '0');
  const t = hex(ms, 12);
  const rand = Array.from({ length: 5 }, () => hex(r() * 65536, 4));
  const variant = (0x8000 | (Math.floor(r() * 65536) & 0x3fff)).toString(16);
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${rand[0]!.slice(1)}-${variant}-${rand[1]}${rand[2]}${rand[3]}`;
}

// ---- the world --------------------------------------------------------------------------------------

/** Server → tool → median response bytes. `ops` and github/delete_repository never occur normally. */
const CATALOG: Record<string, Record<string, number>> = {
  github: {
    list_issues: 6000,
    get_file_contents: 9000,
    create_issue: 1500,
    search_code: 12000,
    list_commits: 5000,
    create_pull_request: 2000,
  },
  filesystem: {
    read_file: 8000,
    write_file: 200,
    list_directory: 1500,
    search_files: 3000,
    get_file_info: 400,
  },
  postgres: { query: 4000, list_tables: 800, describe_table: 1200 },
  slack: { send_message: 300, list_channels: 2000, read_channel_history: 10000 },
  jira: { search_issues: 7000, create_ticket: 500, update_ticket: 400 },
  everything: { echo: 100, add: 50, longRunningOperation: 200, sampleLLM: 3000 },
  browser: { navigate: 500, screenshot: 150000, click: 200, fetch_page: 40000 },
};
const RARE: Record<string, Record<string, number>> = {
  ops: { exec_command: 1000, restart_service: 200 },
  github: { delete_repository: 300 },
};
const SERVER_VERSION: Record<string, string> = {
  github: '2.1.0',
  filesystem: '2026.8.31',
  postgres: '0.6.2',
  slack: '1.3.0',
  jira: '0.9.4',
  everything: '2026.8.31',
  browser: '0.4.1',
  ops: '0.1.0',
};
const OFFICE_ZONES = [
  'America/Los_Angeles',
  'Europe/Berlin',
  'Asia/Tokyo',
  'Europe/London',
  'Asia/Kolkata',
  'Australia/Sydney',
  'America/Sao_Paulo',
  'Europe/Madrid',
];
const DST_CANDIDATES = [
  'America/New_York',
  'Europe/Berlin',
  'Europe/London',
  'Australia/Sydney',
  'Pacific/Auckland',
  'America/Santiago',
  'America/Chicago',
];
const FIRST_NAMES = [
  'anna',
  'bo',
  'chen',
  'dara',
  'emil',
  'fatima',
  'gus',
  'hana',
  'ivo',
  'jun',
  'kai',
  'lea',
];

function sourceOf(prefix: string, name: string) {
  return `${prefix}-${name}`;
}
export function serverName(prefix: string, base: string): string {
  return `${prefix}-${base}`;
}
export function definitionHash(server: string, tool: string, version = 1): string {
  return sha(`${server}/${tool}/v${version}`);
}

/** The run's IPv6 documentation range: 2001:db8:XXXX:YYYY::/64, unique per prefix. */
export function addressPrefix(prefix: string): string {
  const h = hash32(prefix);
  const a = ((h >>> 16) | 0x8000).toString(16);
  const b = ((h & 0xffff) | 0x8000).toString(16);
  return `2001:db8:${a}:${b}:`;
}
const address = (prefix: string, group: number, host: number) =>
  `${addressPrefix(prefix)}${(0x100 + group).toString(16)}::${host.toString(16)}`;

interface ClientDef extends ClientInfo {
  no: number;
  rate: number;
  r: Rand;
  idr: Rand;
  home: string;
  agentName: string;
  userAgent: string;
  transport: 'stdio' | 'http';
  errorRate: number;
}

function archetypeCounts(n: number): Archetype[] {
  const fixedNew: Archetype[] = ['new_agent', 'new_office', 'new_office'];
  const rest = Math.max(n - fixedNew.length, 12);
  const shares: Array<[Archetype, number]> = [
    ['office', 0.38],
    ['agent', 0.19],
    ['batch', 0.12],
    ['weekday', 0.11],
    ['weekend', 0.08],
    ['noisy', 0.1],
  ];
  const minimum: Record<string, number> = { office: 8, agent: 4, batch: 1, weekday: 1, weekend: 1, noisy: 1 };
  const out: Archetype[] = [];
  const counts = shares.map(([a, s]) => [a, Math.max(minimum[a]!, Math.round(rest * s))] as const);
  let total = counts.reduce((s, [, c]) => s + c, 0);
  const mutable = counts.map(([a, c]) => [a, c] as [Archetype, number]);
  // Trim or pad office (the largest group) so the total matches.
  while (total > rest && mutable[0]![1] > minimum.office!) {
    mutable[0]![1]--;
    total--;
  }
  while (total < rest) {
    mutable[0]![1]++;
    total++;
  }
  for (const [a, c] of mutable) for (let i = 0; i < c; i++) out.push(a);
  return [...out, ...fixedNew];
}

// ---- generation -------------------------------------------------------------------------------------

interface Ev {
  ms: number;
  ev: Record<string, unknown>;
  client: string;
  anomalous: boolean;
}

export const DEFAULTS: Omit<ScenarioOptions, 'prefix' | 'end'> = {
  seed: 1,
  days: 28,
  clients: 40,
  evalDays: 7,
  newClientDays: 3,
  tailMs: 2 * HOUR,
};

/** Start of the latest UTC day that ended at least `marginMs` before `now`. */
export function defaultEnd(now = Date.now(), marginMs = 3 * HOUR): number {
  return Math.floor((now - marginMs) / DAY) * DAY;
}

export function generateScenario(partial: Partial<ScenarioOptions> & { prefix: string }): Scenario {
  const o: ScenarioOptions = { ...DEFAULTS, end: defaultEnd(), ...partial };
  if (o.end % DAY !== 0)
    throw new Error(`end must be the start of a UTC day, got ${new Date(o.end).toISOString()}`);
  if (o.days < o.evalDays + 7)
    throw new Error(
      `days (${o.days}) must leave at least 7 days of history before the ${o.evalDays} evaluation days`,
    );
  if (o.evalDays < 7) throw new Error('evalDays must be at least 7 (the anomalies need a full week)');
  if (!/^[a-z0-9][a-z0-9-]{2,40}$/.test(o.prefix))
    throw new Error(`prefix must be 3-41 characters of [a-z0-9-], got ${JSON.stringify(o.prefix)}`);
  const p = o.prefix;
  const start = o.end - o.days * DAY;
  const evalStart = o.end - o.evalDays * DAY;
  const tailEnd = o.end + o.tailMs;
  const dst = zoneWithTransition(DST_CANDIDATES, start, o.end);
  const dstZone = dst?.tz ?? 'America/New_York';

  // The company holiday: the evaluation period's third weekday (UTC), so office clients are quiet on
  // a day where the anomalies below are not placed.
  let holidayMs = evalStart;
  for (let seen = 0, t = evalStart; t < o.end; t += DAY) {
    const wd = new Date(t).getUTCDay();
    if (wd >= 1 && wd <= 5 && ++seen === 3) {
      holidayMs = t;
      break;
    }
  }
  const holiday = { date: new Date(holidayMs).toISOString().slice(0, 10), name: 'Company holiday' };

  const steadySources = new Set([sourceOf(p, 'gw-core'), sourceOf(p, 'sdk-agents')]);
  const sources: Manifest['sources'] = [
    { id: sourceOf(p, 'gw-core'), type: 'gateway', steady: true },
    { id: sourceOf(p, 'sdk-agents'), type: 'sdk', steady: true },
    { id: sourceOf(p, 'gw-eu'), type: 'gateway', steady: false },
    { id: sourceOf(p, 'gw-us'), type: 'gateway', steady: false },
    { id: sourceOf(p, 'gw-apac'), type: 'gateway', steady: false },
    { id: sourceOf(p, 'gw-ci'), type: 'gateway', steady: false },
    { id: sourceOf(p, 'sdk-batch'), type: 'sdk', steady: false },
  ];
  const sourceType = (id: string) => sources.find((s) => s.id === id)!.type;

  // ---- clients
  const archetypes = archetypeCounts(o.clients);
  const ord: Record<string, number> = {};
  const clients: ClientDef[] = archetypes.map((archetype, no) => {
    const r = rng(hash32(`${o.seed}:client:${no}`));
    const idr = rng(hash32(`${o.seed}:${p}:ids:${no}`));
    const k = (ord[archetype] = (ord[archetype] ?? -1) + 1);
    const id = `${p}-${String(no).padStart(2, '0')}-${archetype.replace('_', '-')}`;
    let tz = 'UTC';
    if (archetype === 'office' || archetype === 'new_office')
      tz =
        archetype === 'office' && k === 0
          ? dstZone
          : OFFICE_ZONES[(k + (archetype === 'new_office' ? 1 : 0)) % OFFICE_ZONES.length]!;
    else if (archetype === 'batch')
      tz = pick(r, ['Europe/Berlin', 'America/Chicago', 'Asia/Singapore', 'UTC']);
    else if (archetype === 'weekday') tz = pick(r, ['Europe/London', 'America/New_York', 'UTC']);
    else if (archetype === 'weekend') tz = pick(r, ['America/Los_Angeles', 'Europe/Paris']);
    const region = tz.startsWith('Europe') ? 'eu' : tz.startsWith('America') ? 'us' : 'apac';
    const source =
      archetype === 'office' || archetype === 'new_office' || archetype === 'weekend'
        ? sourceOf(p, `gw-${region}`)
        : archetype === 'batch'
          ? sourceOf(p, 'sdk-batch')
          : archetype === 'weekday'
            ? sourceOf(p, 'gw-ci')
            : archetype === 'agent'
              ? sourceOf(p, k % 2 === 0 ? 'gw-core' : 'sdk-agents')
              : sourceOf(p, 'gw-core');
    // Stable server/tool subset. Agents are pinned so the drift targets are always in use.
    const bases = Object.keys(CATALOG);
    const nServers = 1 + Math.floor(r() * 3);
    const chosen = new Set<string>();
    if (archetype === 'agent' || archetype === 'new_agent') chosen.add(k % 2 === 0 ? 'github' : 'postgres');
    while (chosen.size < nServers) chosen.add(pick(r, bases));
    const tools: string[] = [];
    for (const base of chosen) {
      const names = Object.keys(CATALOG[base]!);
      const n = 2 + Math.floor(r() * Math.min(3, names.length - 1));
      const set = new Set<string>();
      if (base === 'github' && (archetype === 'agent' || archetype === 'new_agent')) set.add('create_issue');
      if (base === 'postgres' && (archetype === 'agent' || archetype === 'new_agent')) set.add('query');
      while (set.size < n) set.add(pick(r, names));
      for (const t of set) tools.push(`${base}/${t}`);
    }
    const human = ['office', 'new_office', 'weekend'].includes(archetype);
    const user = human
      ? `${FIRST_NAMES[no % FIRST_NAMES.length]}.${no}@corp.example`
      : `svc-${archetype}-${no}`;
    const rate =
      archetype === 'office' || archetype === 'new_office'
        ? 12 + r() * 18
        : archetype === 'agent' || archetype === 'new_agent'
          ? 12 + r() * 20
          : archetype === 'batch'
            ? 220 + r() * 180
            : archetype === 'weekday'
              ? 8 + r() * 10
              : archetype === 'weekend'
                ? 6 + r() * 8
                : 14 + r() * 10;
    const since = archetype.startsWith('new_') ? o.end - o.newClientDays * DAY : start;
    return {
      no,
      id,
      archetype,
      tz,
      source,
      servers: [...chosen].map((b) => serverName(p, b)),
      tools: tools.map((t) => `${serverName(p, t.split('/')[0]!)}/${t.split('/')[1]}`),
      address: address(p, no, 0x10),
      home: address(p, no, 0x20 + Math.floor(r() * 200)),
      user,
      since,
      labels: { team: pick(r, ['platform', 'data', 'support', 'sales', 'security']), kind: archetype },
      rate,
      r,
      idr,
      agentName: human ? pick(r, ['claude-desktop', 'cursor', 'vscode-copilot']) : 'custom-agent',
      userAgent: human
        ? pick(r, ['claude-desktop/0.9.3', 'cursor/1.2.4', 'vscode/1.96'])
        : 'mcp-python-sdk/1.9.0',
      transport: human ? 'stdio' : 'http',
      errorRate: archetype === 'noisy' ? 0.06 : 0.02,
    };
  });
  const byArch = (a: Archetype) => clients.filter((c) => c.archetype === a);

  // ---- normal traffic
  const out: Ev[] = [];
  const toolHash = new Map<string, { version: number; from: number }[]>(); // server/tool → hash versions
  const hashAt = (server: string, tool: string, ms: number) => {
    const versions = toolHash.get(`${server}/${tool}`);
    let v = 1;
    if (versions) for (const x of versions) if (ms >= x.from) v = x.version;
    return definitionHash(server, tool, v);
  };

  const baseEvent = (
    c: ClientDef,
    ms: number,
    session: { id: string; ip: string; user: string },
    server: string,
  ) => ({
    schema_version: 1,
    event_id: uuidv7(ms, c.idr),
    ts: '',
    source: {
      type: sourceType(c.source),
      id: c.source,
      version: c.source.includes('sdk') ? '1.9.0' : '0.8.2',
    },
    client: {
      id: c.id,
      name: c.id.slice(p.length + 1),
      user: session.user,
      agent: c.agentName,
      ip: session.ip,
      user_agent: c.userAgent,
      session_id: session.id,
    },
    server: {
      name: server,
      version: SERVER_VERSION[server.slice(p.length + 1)] ?? '1.0.0',
      transport: c.transport,
    },
    labels: c.labels,
  });

  function callEvent(
    c: ClientDef,
    ms: number,
    session: { id: string; ip: string; user: string },
    opts: { tool?: string; bytes?: number; outcome?: 'ok' | 'error' | 'denied' } = {},
  ): Record<string, unknown> {
    const r = c.r;
    const st = opts.tool ?? weightedTool(c);
    const [server, tool] = st.split('/') as [string, string];
    const base = server.slice(p.length + 1);
    const median = CATALOG[base]?.[tool] ?? RARE[base]?.[tool] ?? 1000;
    const outcome =
      opts.outcome ??
      (r() < c.errorRate ? (r() < 0.8 ? 'error' : 'denied') : ('ok' as 'ok' | 'error' | 'denied'));
    const bytes = opts.bytes ?? Math.min(8_000_000, Math.round(logNormal(r, median, 1.3)));
    const ev: Record<string, unknown> = {
      ...baseEvent(c, ms, session, server),
      kind: 'tool_call',
      method: 'tools/call',
      tool: { name: tool, definition_hash: hashAt(server, tool, ms) },
      outcome,
      http_status: c.transport === 'http' ? (outcome === 'denied' ? 403 : 200) : undefined,
      auth: { method: c.transport === 'http' ? 'api_key' : 'oauth', result: 'success' },
      duration_ms: Math.round(logNormal(r, 120, 1)),
      request_bytes: 80 + Math.floor(r() * 1500),
      response_bytes: outcome === 'ok' ? bytes : 120,
      trace_id: sha(`${c.id}:${ms}:${r()}`).slice(0, 32),
    };
    if (outcome === 'error') {
      ev.tool_is_error = r() < 0.6;
      if (!ev.tool_is_error) ev.rpc_error_code = -32603;
      ev.error = { code: ev.tool_is_error ? 'TOOL_ERROR' : -32603, message: 'upstream request failed' };
    }
    if (outcome === 'denied') ev.error = { code: 'POLICY_DENIED', message: 'tool not allowed by policy' };
    if (ev.http_status === undefined) delete ev.http_status;
    return ev;
  }

  function weightedTool(c: ClientDef): string {
    // Zipf-like: the first tools are used most.
    const n = c.tools.length;
    const u = c.r();
    const idx = Math.min(n - 1, Math.floor(n * u * u));
    return c.tools[idx]!;
  }

  function authEvent(
    c: ClientDef,
    ms: number,
    session: { id: string; ip: string; user: string },
    ok: boolean,
    reason?: string,
  ): Record<string, unknown> {
    const ev: Record<string, unknown> = {
      ...baseEvent(c, ms, session, c.servers[0]!),
      kind: 'auth',
      method: 'initialize',
      outcome: ok ? 'ok' : 'auth_failed',
      auth: {
        method: c.transport === 'http' ? 'api_key' : 'oauth',
        result: ok ? 'success' : 'failure',
        ...(ok ? {} : { reason: reason ?? 'invalid_credentials' }),
      },
      duration_ms: 5 + Math.floor(c.r() * 40),
      request_bytes: 200,
      response_bytes: ok ? 400 : 90,
    };
    if (c.transport === 'http') ev.http_status = ok ? 200 : 401;
    if (!ok) ev.error = { code: 'AUTH_FAILED', message: 'authentication failed' };
    return ev;
  }

  function sessionStart(
    c: ClientDef,
    ms: number,
    session: { id: string; ip: string; user: string },
    push: (e: Ev) => void,
  ) {
    const human = c.transport === 'stdio';
    const typo = c.r() < (human ? 0.08 : 0.01);
    if (typo) {
      const gap = human ? 3_000 + c.r() * 17_000 : 500 + c.r() * 1500;
      push({
        ms: ms - 4000 - gap,
        ev: authEvent(c, ms - 4000 - gap, session, false, human ? 'invalid_credentials' : 'token_expired'),
        client: c.id,
        anomalous: false,
      });
    }
    push({ ms: ms - 4000, ev: authEvent(c, ms - 4000, session, true), client: c.id, anomalous: false });
    push({
      ms: ms - 3000,
      ev: {
        ...baseEvent(c, ms - 3000, session, c.servers[0]!),
        kind: 'session',
        method: 'initialize',
        outcome: 'ok',
        duration_ms: 20,
        request_bytes: 300,
        response_bytes: 900,
      },
      client: c.id,
      anomalous: false,
    });
    for (const st of c.tools) {
      const [server, tool] = st.split('/') as [string, string];
      const t = ms - 2000 + c.tools.indexOf(st);
      push({
        ms: t,
        ev: {
          ...baseEvent(c, t, session, server),
          kind: 'tool_list',
          method: 'tools/list',
          tool: { name: tool, definition_hash: hashAt(server, tool, t) },
          outcome: 'ok',
          duration_ms: 15,
          request_bytes: 60,
          response_bytes: 2400,
        },
        client: c.id,
        anomalous: false,
      });
    }
  }

  /** Expected calls in the UTC hour starting at `h` for client `c`, and where in the hour they fall. */
  function expected(
    c: ClientDef,
    h: number,
    lateDate: string,
  ): { lambda: number; minuteSpan: [number, number] } {
    const l = localHour(c.tz, h + 30 * 60_000);
    const workday = l.weekday >= 1 && l.weekday <= 5;
    const full: [number, number] = [0, 60];
    switch (c.archetype) {
      case 'office':
      case 'new_office': {
        if (!workday || l.date === holiday.date) return { lambda: 0, minuteSpan: full };
        const shape = [
          0, 0, 0, 0, 0, 0, 0, 0, 0.3, 1, 1.2, 1.1, 0.5, 0.9, 1.1, 1.1, 0.9, 0.5, 0.12, 0.04, 0, 0, 0, 0,
        ];
        // Some days a few calls run into the evening (18:00-19:00 local).
        const late = lateDate === l.date && l.hour === 18 ? 3 : 0;
        return { lambda: c.rate * shape[l.hour]! + late, minuteSpan: full };
      }
      case 'agent':
      case 'new_agent':
        return { lambda: c.rate * (1 + 0.2 * Math.sin(((l.hour - 8) / 24) * 2 * Math.PI)), minuteSpan: full };
      case 'batch':
        return l.hour === 2 ? { lambda: c.rate, minuteSpan: [0, 40] } : { lambda: 0.3, minuteSpan: full };
      case 'weekday':
        return { lambda: workday && l.hour >= 6 && l.hour < 22 ? c.rate : 0, minuteSpan: full };
      case 'weekend':
        return { lambda: !workday && l.hour >= 10 && l.hour < 18 ? c.rate : 0, minuteSpan: full };
      case 'noisy':
        return { lambda: l.hour >= 7 && l.hour < 23 ? c.rate : c.rate * 0.1, minuteSpan: full };
    }
  }

  function sessionKey(c: ClientDef, ms: number): string {
    if (c.archetype === 'agent' || c.archetype === 'new_agent' || c.archetype === 'noisy')
      return `b${Math.floor(ms / (6 * HOUR))}`;
    // One session per nightly run: the day rolls over at 01:00 local, an hour before the run.
    if (c.archetype === 'batch') return `n${localHour(c.tz, ms - HOUR).date}`;
    return `d${localHour(c.tz, ms).date}`;
  }

  const sessions = new Map<string, Map<string, { id: string; ip: string; user: string }>>();
  const sessionFor = (c: ClientDef, key: string) => {
    let m = sessions.get(c.id);
    if (!m) sessions.set(c.id, (m = new Map()));
    let s = m.get(key);
    if (!s) {
      const fromHome = c.transport === 'stdio' && c.r() < 0.2;
      s = {
        id: `${p}-s-${c.no}-${sha(`${c.id}:${key}`).slice(0, 12)}`,
        ip: fromHome ? c.home : c.address,
        user: c.user,
      };
      m.set(key, s);
    }
    return s;
  };

  for (const c of clients) {
    const push = (e: Ev) => out.push(e);
    let lateDay = '';
    let currentKey = '';
    let dayFactorDate = '';
    let dayFactor = 1;
    for (let h = Math.max(start, c.since); h < tailEnd; h += HOUR) {
      const l = localHour(c.tz, h);
      if (l.date !== dayFactorDate) {
        dayFactorDate = l.date;
        dayFactor = logNormal(c.r, 1, c.archetype === 'noisy' ? 0.35 : 0.2);
        lateDay = c.r() < 0.1 ? l.date : '';
      }
      const shape = expected(c, h, lateDay);
      const minuteSpan = shape.minuteSpan;
      let lambda = shape.lambda;
      if (c.archetype === 'noisy') {
        lambda *= logNormal(c.r, 1, 0.8);
        if (c.r() < 0.03) lambda *= 4;
      } else lambda *= logNormal(c.r, 1, 0.25);
      const n = poisson(c.r, lambda * dayFactor);
      const times = Array.from(
        { length: n },
        () => h + Math.floor((minuteSpan[0] + c.r() * (minuteSpan[1] - minuteSpan[0])) * 60_000),
      ).sort((a, b) => a - b);
      for (const t of times) {
        const key = sessionKey(c, t);
        const s = sessionFor(c, key);
        if (key !== currentKey) {
          currentKey = key;
          sessionStart(c, t, s, push);
        }
        push({ ms: t, ev: callEvent(c, t, s), client: c.id, anomalous: false });
      }
    }
  }

  // ---- anomalies
  const labels: Label[] = [];
  const iso = (ms: number) => new Date(ms).toISOString();
  const day = (k: number, hour = 0, minute = 0) => evalStart + k * DAY + hour * HOUR + minute * 60_000;
  const nextId = (() => {
    const counts: Record<string, number> = {};
    return (d: DetectorKind) => `${d}-${(counts[d] = (counts[d] ?? 0) + 1)}`;
  })();
  /** The n-th local workday (not the holiday) of the evaluation period, at hh:mm local. */
  function workdayAt(c: ClientDef, n: number, hour: number, minute = 0): number {
    const found: number[] = [];
    for (let t = evalStart + 12 * HOUR; t < o.end; t += DAY) {
      const l = localParts(c.tz, t);
      if (l.weekday >= 1 && l.weekday <= 5 && l.date !== holiday.date) {
        const at = localToUtc(c.tz, l.date, hour, minute);
        if (at >= evalStart && at < o.end - 6 * HOUR) found.push(at);
      }
    }
    if (found.length === 0) throw new Error(`no local workday for ${c.id} in the evaluation period`);
    return found[n % found.length]!;
  }
  function weekendAt(c: ClientDef, hour: number): number {
    for (let t = evalStart + 12 * HOUR; t < o.end; t += DAY) {
      const l = localParts(c.tz, t);
      if (l.weekday === 0 || l.weekday === 6) {
        const at = localToUtc(c.tz, l.date, hour);
        if (at >= evalStart && at < o.end - 6 * HOUR) return at;
      }
    }
    throw new Error(`no weekend day for ${c.id}`);
  }
  const liveSession = (c: ClientDef, ms: number) => sessionFor(c, sessionKey(c, ms));
  const pickClient = (a: Archetype, k: number) => {
    const xs = byArch(a);
    if (xs.length === 0) throw new Error(`no ${a} client`);
    return xs[k % xs.length]!;
  };

  function inject(
    detector: DetectorKind,
    c: ClientDef | null,
    evs: Ev[],
    extra: Partial<Label> & { description: string },
  ): Label {
    evs.sort((a, b) => a.ms - b.ms);
    for (const e of evs) {
      e.anomalous = true;
      out.push(e);
    }
    const first = evs[0];
    const label: Label = {
      id: nextId(detector),
      detector,
      client_id: c?.id ?? extra.client_id!,
      subjects: [c?.id ?? extra.client_id!],
      clients: c ? [c.id] : [],
      start: iso(first?.ms ?? 0),
      end: iso((evs[evs.length - 1]?.ms ?? 0) + 1),
      first_event_id: (first?.ev.event_id as string | undefined) ?? null,
      cold_start: c ? c.archetype.startsWith('new_') : false,
      ...extra,
    };
    labels.push(label);
    return label;
  }
  const spread = (from: number, minutes: number, n: number, r: Rand) =>
    Array.from({ length: n }, () => from + Math.floor(r() * minutes * 60_000)).sort((a, b) => a - b);
  const allTools = (base: string) => Object.keys(CATALOG[base]!).map((t) => `${serverName(p, base)}/${t}`);

  // 1. tool breadth: enumeration across many known tools and servers (tools other clients use).
  {
    const c = pickClient('office', 1);
    const at = workdayAt(c, 1, 10, 15);
    const s = liveSession(c, at);
    const pool = ['github', 'filesystem', 'postgres', 'slack', 'jira', 'browser'].flatMap(allTools);
    const times = spread(at, 40, 34, c.r);
    inject(
      'tool_breadth',
      c,
      times.map((t, i) => ({
        ms: t,
        ev: callEvent(c, t, s, { tool: pool[(i * 7) % pool.length]! }),
        client: c.id,
        anomalous: true,
      })),
      { description: 'office user calls ~30 distinct tools on 6 servers within 40 minutes (enumeration)' },
    );
  }
  {
    const c = pickClient('agent', 1);
    const at = day(4, 3, 5);
    const s = liveSession(c, at);
    const pool = ['github', 'filesystem', 'slack', 'jira', 'everything'].flatMap(allTools);
    const times = spread(at, 30, 28, c.r);
    inject(
      'tool_breadth',
      c,
      times.map((t, i) => ({
        ms: t,
        ev: callEvent(c, t, s, { tool: pool[i % pool.length]! }),
        client: c.id,
        anomalous: true,
      })),
      { description: 'service agent walks 24 tools on 5 servers in 30 minutes at 03:00 UTC' },
    );
  }

  // 2. never-used tool / server, rare across all clients.
  {
    const c = pickClient('office', 2);
    const at = workdayAt(c, 2, 14, 20);
    const s = liveSession(c, at);
    const times = spread(at, 12, 4, c.r);
    inject(
      'new_tool',
      c,
      times.map((t, i) => ({
        ms: t,
        ev: callEvent(c, t, s, {
          tool: `${serverName(p, 'ops')}/${i % 2 ? 'restart_service' : 'exec_command'}`,
        }),
        client: c.id,
        anomalous: true,
      })),
      { description: 'office user calls ops/exec_command, a server and tool no client ever used' },
    );
  }
  {
    const c = pickClient('agent', 2);
    const at = day(5, 11, 10);
    const s = liveSession(c, at);
    const times = spread(at, 5, 3, c.r);
    inject(
      'new_tool',
      c,
      times.map((t) => ({
        ms: t,
        ev: callEvent(c, t, s, { tool: `${serverName(p, 'github')}/delete_repository` }),
        client: c.id,
        anomalous: true,
      })),
      { description: 'agent calls github/delete_repository, never used by anyone' },
    );
  }

  // 3. volume: calls (runaway loop, scripted bulk use) and response bytes (exfiltration).
  {
    const c = pickClient('agent', 3);
    const at = day(3, 9, 0);
    const s = liveSession(c, at);
    const times = spread(at, 90, Math.round(c.rate * 1.5 * 10), c.r);
    inject(
      'volume',
      c,
      times.map((t) => ({
        ms: t,
        ev: callEvent(c, t, s, { tool: c.tools[0] }),
        client: c.id,
        anomalous: true,
      })),
      { variant: 'calls', description: 'agent in a retry loop: ~10x its hourly calls for 90 minutes' },
    );
  }
  {
    const c = pickClient('office', 3);
    const at = workdayAt(c, 3, 11, 0);
    const s = liveSession(c, at);
    const times = spread(at, 60, Math.round(c.rate * 8), c.r);
    inject(
      'volume',
      c,
      times.map((t) => ({ ms: t, ev: callEvent(c, t, s), client: c.id, anomalous: true })),
      { variant: 'calls', description: 'office user scripts bulk calls: ~8x the usual hour' },
    );
  }
  {
    const c = pickClient('office', 0); // the client in the DST zone
    const at = workdayAt(c, 0, 15, 5);
    const s = liveSession(c, at);
    const fsTool = `${serverName(p, 'filesystem')}/read_file`;
    const times = spread(at, 45, 40, c.r);
    inject(
      'volume',
      c,
      times.map((t) => ({
        ms: t,
        ev: callEvent(c, t, s, {
          tool: c.tools.includes(fsTool) ? fsTool : c.tools[0],
          bytes: 6_000_000 + Math.floor(c.r() * 14_000_000),
          outcome: 'ok',
        }),
        client: c.id,
        anomalous: true,
      })),
      {
        variant: 'bytes',
        description: 'exfiltration: 40 calls returning 6-20 MB each (~500 MB in 45 minutes)',
      },
    );
  }
  {
    const c = pickClient('batch', 0);
    const nightDate = localParts(c.tz, day(2, 12)).date;
    const at = localToUtc(c.tz, nightDate, 2, 0);
    const s = liveSession(c, at + 60_000);
    const times = spread(at, 40, 60, c.r);
    inject(
      'volume',
      c,
      times.map((t) => ({
        ms: t,
        ev: callEvent(c, t, s, { bytes: 4_000_000 + Math.floor(c.r() * 8_000_000), outcome: 'ok' }),
        client: c.id,
        anomalous: true,
      })),
      {
        variant: 'bytes',
        description: 'nightly batch pulls ~60 extra responses of 4-12 MB inside its usual 02:00 run',
      },
    );
  }

  // 4. off-hours.
  {
    const c = pickClient('office', 4);
    const day1 = workdayAt(c, 1, 12);
    const date = localParts(c.tz, day1).date;
    const at = localToUtc(c.tz, date, 3, 10);
    const s = { id: `${p}-s-${c.no}-night`, ip: c.address, user: c.user };
    const times = spread(at, 45, 25, c.r);
    inject(
      'off_hours',
      c,
      times.map((t) => ({ ms: t, ev: callEvent(c, t, s), client: c.id, anomalous: true })),
      { description: 'office user active at 03:10 local on a workday (45 minutes, usual tools)' },
    );
  }
  {
    const c = pickClient('weekday', 0);
    const at = weekendAt(c, 14);
    const s = { id: `${p}-s-${c.no}-weekend`, ip: c.address, user: c.user };
    const times = spread(at, 60, Math.round(c.rate * 1.2), c.r);
    inject(
      'off_hours',
      c,
      times.map((t) => ({ ms: t, ev: callEvent(c, t, s), client: c.id, anomalous: true })),
      { description: 'weekday-only bot active on a weekend afternoon' },
    );
  }
  {
    const c = pickClient('new_office', 0);
    const date = localParts(c.tz, day(5, 12)).date;
    const at = localToUtc(c.tz, date, 23, 30);
    const s = { id: `${p}-s-${c.no}-late`, ip: c.address, user: c.user };
    const times = spread(at, 25, 14, c.r);
    inject(
      'off_hours',
      c,
      times.map((t) => ({ ms: t, ev: callEvent(c, t, s), client: c.id, anomalous: true })),
      {
        description: 'brand-new office client (configured business hours 07-20 local) active at 23:30 local',
      },
    );
  }

  // 5. auth-failure bursts for one client.
  const burst = (c: ClientDef, at: number, n: number, minutes: number, ip: string, description: string) => {
    const s = { id: `${p}-s-${c.no}-auth-${at}`, ip, user: c.user };
    const times = spread(at, minutes, n, c.r);
    return inject(
      'auth_burst',
      c,
      times.map((t) => ({
        ms: t,
        ev: authEvent(c, t, s, false, 'invalid_token'),
        client: c.id,
        anomalous: true,
      })),
      { description },
    );
  };
  burst(
    pickClient('agent', 0),
    day(1, 16, 0),
    40,
    4,
    pickClient('agent', 0).address,
    'agent hammers with a revoked key: 40 failures in 4 minutes',
  );
  burst(
    pickClient('office', 5),
    workdayAt(pickClient('office', 5), 3, 10, 0),
    20,
    3,
    address(p, 0xeee, 5),
    '20 failures in 3 minutes from an unknown address',
  );
  burst(
    pickClient('new_agent', 0),
    day(5, 14, 0),
    25,
    5,
    address(p, 0xeee, 6),
    'brand-new client: 25 failures in 5 minutes',
  );

  // 6. spraying: one address failing against many clients. The attempts carry each victim's live
  // session id (as the outside generator's spray did): besides its auth_spray alert, the attack can
  // raise a session_misuse alert per victim session, and all of it must page as one incident.
  const spray = (at: number, n: number, ip: string) => {
    const r = rng(hash32(`${o.seed}:spray:${at}`));
    const targets = clients.filter((c) => !c.archetype.startsWith('new_')).slice(0, n);
    const evs: Ev[] = targets.map((c) => {
      const t = at + Math.floor(r() * 15 * 60_000);
      const s = { id: liveSession(c, t).id, ip, user: c.user };
      const ev = authEvent(c, t, s, false, 'invalid_credentials');
      (ev.client as Record<string, unknown>).user_agent = 'python-requests/2.32';
      return { ms: t, ev, client: c.id, anomalous: true };
    });
    const label = inject('auth_spray', null, evs, {
      client_id: ip,
      description: `one address fails once against each of ${n} clients within 15 minutes`,
    });
    label.subjects = [ip];
    label.clients = targets.map((c) => c.id);
  };
  spray(day(2, 4, 0), Math.min(14, clients.length - 4), address(p, 0xeee, 0xa1));
  spray(day(5, 22, 0), Math.min(10, clients.length - 4), address(p, 0xeee, 0xa2));

  // 7. failures followed by a success from the same (new) address.
  const failThenSuccess = (c: ClientDef, at: number, fails: number, ip: string, description: string) => {
    const s = { id: `${p}-s-${c.no}-ato-${at}`, ip, user: c.user };
    const times = spread(at, 6, fails, c.r);
    const evs: Ev[] = times.map((t) => ({
      ms: t,
      ev: authEvent(c, t, s, false, 'invalid_credentials'),
      client: c.id,
      anomalous: true,
    }));
    const okAt = times[times.length - 1]! + 20_000;
    evs.push({ ms: okAt, ev: authEvent(c, okAt, s, true), client: c.id, anomalous: true });
    for (const t of spread(okAt + 5_000, 5, 4, c.r))
      evs.push({ ms: t, ev: callEvent(c, t, s), client: c.id, anomalous: true });
    return inject('auth_fail_then_success', c, evs, { description });
  };
  {
    const c = pickClient('office', 6);
    failThenSuccess(
      c,
      workdayAt(c, 2, 9, 30),
      7,
      address(p, 0xeee, 0xb1),
      '7 failures in 6 minutes from a never-seen address, then a success and calls',
    );
  }
  failThenSuccess(
    pickClient('agent', 0),
    day(4, 18, 0),
    6,
    address(p, 0xeee, 0xb2),
    'agent credential: 6 failures from a new address, then success',
  );
  {
    const c = pickClient('new_office', 1);
    const date = localParts(c.tz, day(6, 12)).date;
    failThenSuccess(
      c,
      localToUtc(c.tz, date, 10, 0),
      8,
      address(p, 0xeee, 0xb3),
      'brand-new client: 8 failures, then success from the same address',
    );
  }

  // 8. error-rate spikes: normal volume, most calls fail.
  const errorSpike = (c: ClientDef, from: number, share: number, description: string) => {
    // The hour needs enough ordinary calls for a share to mean anything (Poisson hours of a 12/h
    // client can hold 5): move it on an hour at a time until one has 12. Exactly round(share x n)
    // of them fail, picked by a seeded shuffle (seeded by client number, not id, so a run's prefix
    // never changes what is generated).
    let hit: Ev[] = [];
    for (let at = from; at < from + 12 * HOUR && hit.length === 0; at += HOUR) {
      const pool = out.filter(
        (e) =>
          e.client === c.id && !e.anomalous && e.ev.kind === 'tool_call' && e.ms >= at && e.ms < at + HOUR,
      );
      if (pool.length < 12) continue;
      const r = rng(hash32(`${o.seed}:err:${c.no}:${at}`));
      for (let i = pool.length - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      }
      hit = pool.slice(0, Math.round(share * pool.length));
    }
    if (hit.length === 0)
      throw new Error(`error spike for ${c.id}: no hour with 12 calls within 12 h of ${iso(from)}`);
    for (const e of hit) {
      e.ev.outcome = 'error';
      e.ev.tool_is_error = true;
      e.ev.response_bytes = 120;
      e.ev.error = { code: 'TOOL_ERROR', message: 'upstream returned 500' };
      e.anomalous = true;
    }
    hit.sort((a, b) => a.ms - b.ms);
    labels.push({
      id: nextId('error_rate'),
      detector: 'error_rate',
      client_id: c.id,
      subjects: [c.id],
      clients: [c.id],
      start: iso(hit[0]!.ms),
      end: iso(hit[hit.length - 1]!.ms + 1),
      first_event_id: hit[0]!.ev.event_id as string,
      cold_start: false,
      description,
    });
  };
  errorSpike(
    pickClient('agent', 1),
    day(6, 13),
    0.6,
    "60% of the agent's calls fail for an hour at its usual volume",
  );
  {
    const c = pickClient('office', 7);
    errorSpike(c, workdayAt(c, 0, 11), 0.55, "55% of an office user's calls fail for an hour");
  }

  // 9. tool definition drift (a rug pull): the hash changes for every caller from T on.
  const drift = (base: string, tool: string, at: number, c: ClientDef) => {
    const server = serverName(p, base);
    toolHash.set(`${server}/${tool}`, [{ version: 2, from: at }]);
    let changed = 0;
    for (const e of out) {
      const t = e.ev.tool as { name: string; definition_hash?: string } | undefined;
      if (t && (e.ev.server as { name: string }).name === server && t.name === tool && e.ms >= at) {
        t.definition_hash = definitionHash(server, tool, 2);
        changed++;
      }
    }
    const s = liveSession(c, at);
    const ev: Ev = {
      ms: at,
      ev: {
        ...baseEvent(c, at, s, server),
        kind: 'tool_list',
        method: 'tools/list',
        tool: { name: tool, definition_hash: definitionHash(server, tool, 2) },
        outcome: 'ok',
        duration_ms: 15,
        request_bytes: 60,
        response_bytes: 2400,
      },
      client: c.id,
      anomalous: true,
    };
    const label = inject('tool_drift', null, [ev], {
      client_id: server,
      description: `${base}/${tool} definition hash changes (rug pull); ${changed} later events carry the new hash`,
    });
    label.subjects = [server, `${server}/${tool}`, `${server}:${tool}`];
    label.clients = clients.filter((x) => x.tools.includes(`${server}/${tool}`)).map((x) => x.id);
  };
  drift('github', 'create_issue', day(1, 12, 0), pickClient('agent', 0));
  drift('postgres', 'query', day(4, 8, 0), pickClient('agent', 1));

  // 10. silent source: a steady source stops reporting for hours.
  const silence = (source: string, from: number, to: number) => {
    const affected = new Set<string>();
    for (let i = out.length - 1; i >= 0; i--) {
      const e = out[i]!;
      if ((e.ev.source as { id: string }).id === source && e.ms >= from && e.ms < to) {
        affected.add(e.client);
        out.splice(i, 1);
      }
    }
    labels.push({
      id: nextId('silent_source'),
      detector: 'silent_source',
      client_id: source,
      subjects: [source],
      clients: [...affected],
      start: iso(from),
      end: iso(to),
      first_event_id: null,
      cold_start: false,
      description: `steady source ${source.slice(p.length + 1)} reports nothing for ${(to - from) / HOUR} hours`,
    });
  };
  silence(sourceOf(p, 'gw-core'), day(2, 8), day(2, 13));
  silence(sourceOf(p, 'sdk-agents'), day(5, 1), day(5, 5));

  // 11. session misuse: a live session id used from a second address or by a second user.
  const hijack = (c: ClientDef, at: number, ip: string, user: string | null, description: string) => {
    const s = liveSession(c, at);
    const stolen = { id: s.id, ip, user: user ?? s.user };
    const times = spread(at, 20, 10, c.r);
    return inject(
      'session_misuse',
      c,
      times.map((t) => ({ ms: t, ev: callEvent(c, t, stolen), client: c.id, anomalous: true })),
      { description },
    );
  };
  hijack(
    pickClient('agent', 3),
    day(2, 20, 10),
    address(p, 0xeee, 0xc1),
    null,
    "agent's live session id replayed from a second address",
  );
  {
    const c = pickClient('office', 8);
    hijack(
      c,
      workdayAt(c, 3, 10, 30),
      address(p, 0xeee, 0xc2),
      `mallory.${c.no}@corp.example`,
      'office session used by a second user from a second address',
    );
  }
  {
    const c = pickClient('new_office', 1);
    const date = localParts(c.tz, day(5, 12)).date;
    hijack(
      c,
      localToUtc(c.tz, date, 11, 0),
      address(p, 0xeee, 0xc3),
      null,
      'brand-new client: its session id replayed from a second address',
    );
  }

  /** Extra tool calls of `c` (its first tool) at `times`; ids from the prefix too (another run, other ids). */
  const extraCalls = (
    c: ClientDef,
    key: string,
    times: number[],
    fields: (i: number) => Record<string, unknown>,
  ) => {
    const idr = rng(hash32(`${p}:${o.seed}:${key}:${c.no}`));
    const [server, name] = c.tools[0]!.split('/') as [string, string];
    return times.map((t, i): Ev => ({
      ms: t,
      ev: {
        ...baseEvent(c, t, liveSession(c, t), server),
        event_id: uuidv7(t, idr),
        kind: 'tool_call',
        method: 'tools/call',
        tool: { name, definition_hash: hashAt(server, name, t) },
        auth: { method: c.transport === 'http' ? 'api_key' : 'oauth', result: 'success' },
        ...fields(i),
      },
      client: c.id,
      anomalous: true,
    }));
  };

  // 12. sub-hour error bursts (error_burst): a retry loop failing for 30 minutes on top of the
  // client's normal traffic. Eight failures in the half hour are about a fifth of its hour, under the
  // hourly error_rate band (median + 25 points), which is the case the sliding window exists for.
  const errorBurst = (c: ClientDef, from: number, description: string) => {
    const r = rng(hash32(`${o.seed}:burst:${c.no}`));
    const times = Array.from({ length: 8 }, (_, i) => from + i * 225_000 + Math.floor(r() * 60_000));
    const evs = extraCalls(c, 'burst', times, () => ({
      outcome: 'error',
      tool_is_error: true,
      error: { code: 'TOOL_ERROR', message: 'upstream returned 503' },
      duration_ms: 30_000,
      request_bytes: 300,
      response_bytes: 120,
    }));
    return inject('error_burst', c, evs, { description });
  };
  errorBurst(pickClient('agent', 2), day(3, 14, 10), 'an agent retry loop fails 8 times in 30 minutes');
  {
    const c = pickClient('noisy', 1);
    errorBurst(c, day(2, 15, 5), 'a noisy client (6% errors) fails 8 times in 30 minutes');
  }

  // 13. credentials in tool arguments (secret_in_args): an agent pastes a token into a tool call
  // three times, an office user a connection string with its password. Values are fake but
  // real-shaped (redaction recognises them), derived from the seed.
  const secretInArgs = (
    c: ClientDef,
    at: number,
    args: (i: number) => Record<string, unknown>,
    description: string,
  ) => {
    const r = rng(hash32(`${o.seed}:secret:${c.no}`));
    const times = [0, 1, 2].map((i) => at + i * 4 * 60_000 + Math.floor(r() * 60_000));
    const evs = extraCalls(c, 'secret', times, (i) => ({
      outcome: 'ok',
      duration_ms: 90,
      request_bytes: 400,
      response_bytes: 900,
      args: args(i),
    }));
    return inject('secret_in_args', c, evs, { description });
  };
  {
    const B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    const r = rng(hash32(`${o.seed}:token`));
    const token = `ghp_${Array.from({ length: 36 }, () => B62[Math.floor(r() * 62)]).join('')}`;
    secretInArgs(
      pickClient('agent', 4),
      day(1, 16, 20),
      (i) => ({ repo: 'acme/api', note: i === 0 ? `clone with ${token}` : `retry ${i} with token ${token}` }),
      'an agent passes a GitHub token through tool arguments (3 calls)',
    );
    const c = pickClient('office', 9);
    const password = Array.from({ length: 14 }, () => B62[Math.floor(r() * 62)]).join('');
    secretInArgs(
      c,
      workdayAt(c, 2, 11, 40),
      () => ({ dsn: `postgres://reporting:${password}@db.internal.example:5432/sales`, query: 'select 1' }),
      'an office user pastes a connection string with its password into a tool call',
    );
  }

  // 14. tool risk from MCP annotations (issue 14 items 4, 5, 7). Normal traffic lists its tools
  // without annotations (unclassified: never a flow, never destructive), so these use servers of
  // their own whose listings carry annotations, as gateways and SDKs emit them, and calls that carry
  // their tool's annotations (the gateway adds them from the session's last listing).
  function toolRiskCases() {
    const idr = rng(hash32(`${p}:${o.seed}:tool-risk`));
    const READ = { title: 'Read a secret', readOnlyHint: true, openWorldHint: false };
    const SEND = { title: 'Send an email', readOnlyHint: false, openWorldHint: true };
    const DROP = { title: 'Drop a table', readOnlyHint: false, destructiveHint: true, openWorldHint: false };
    const ev = (
      c: ClientDef,
      t: number,
      session: { id: string; ip: string; user: string },
      server: string,
      kind: 'tool_list' | 'tool_call',
      tool: string,
      annotations: Record<string, unknown>,
    ): Ev => ({
      ms: t,
      ev: {
        ...baseEvent(c, t, session, server),
        event_id: uuidv7(t, idr),
        kind,
        method: kind === 'tool_list' ? 'tools/list' : 'tools/call',
        tool: { name: tool, definition_hash: definitionHash(server, tool), annotations },
        ...(kind === 'tool_call'
          ? { auth: { method: c.transport === 'http' ? 'api_key' : 'oauth', result: 'success' } }
          : {}),
        outcome: 'ok',
        duration_ms: kind === 'tool_list' ? 15 : 140,
        request_bytes: kind === 'tool_list' ? 60 : 300,
        response_bytes: kind === 'tool_list' ? 2400 : 1800,
      },
      client: c.id,
      anomalous: true,
    });
    const vault = serverName(p, 'vault');
    const mail = serverName(p, 'mail');

    // toxic_flow: in one session, a secret read then an email sent out minutes later.
    const flow = (c: ClientDef, at: number, description: string) => {
      const s = liveSession(c, at);
      const label = inject(
        'toxic_flow',
        c,
        [
          ev(c, at, s, vault, 'tool_list', 'read_secret', READ),
          ev(c, at + 1000, s, mail, 'tool_list', 'send_email', SEND),
          ev(c, at + 60_000, s, vault, 'tool_call', 'read_secret', READ),
          ev(c, at + 4 * 60_000, s, mail, 'tool_call', 'send_email', SEND),
        ],
        { description },
      );
      label.subjects = [c.id, `${c.id}/${s.id}`];
    };
    flow(
      pickClient('agent', 5),
      day(2, 9, 20),
      'an agent reads a vault secret, then sends an email (exfiltration path)',
    );
    {
      const c = pickClient('office', 11);
      flow(c, workdayAt(c, 3, 14, 10), "an office user's assistant reads a secret, then mails it out");
    }

    // tool_shadowing: a second server offers a name the client already gets from its usual server.
    const shadow = (c: ClientDef, at: number, description: string) => {
      const [, tool] = c.tools[0]!.split('/') as [string, string];
      const s = liveSession(c, at);
      const label = inject(
        'tool_shadowing',
        c,
        [ev(c, at, s, serverName(p, 'shadow'), 'tool_list', tool, { readOnlyHint: true })],
        { description },
      );
      label.subjects = [c.id, `${c.id}/${tool}`];
    };
    shadow(
      pickClient('agent', 6),
      day(3, 11, 5),
      'a new server offers an agent a tool name its usual server offers',
    );
    {
      const c = pickClient('office', 12);
      shadow(c, workdayAt(c, 4, 9, 35), "a new server shadows an office user's most used tool");
    }

    // first_destructive_use: a client's first call of a tool annotated destructive.
    const destroy = (c: ClientDef, at: number, description: string) => {
      const s = liveSession(c, at);
      const db = serverName(p, 'dba');
      const label = inject(
        'first_destructive_use',
        c,
        [
          ev(c, at, s, db, 'tool_list', 'drop_table', DROP),
          ev(c, at + 2 * 60_000, s, db, 'tool_call', 'drop_table', DROP),
        ],
        { description },
      );
      label.subjects = [c.id, `${c.id}/${db}/drop_table`];
    };
    destroy(pickClient('batch', 1), day(4, 2, 40), 'a batch job drops a table for the first time');
    {
      const c = pickClient('office', 13);
      destroy(c, workdayAt(c, 1, 16, 5), 'an office user calls a destructive tool for the first time');
    }
  }

  toolRiskCases();

  // A session misuse only exists if the victim session was used normally before; make sure of it.
  for (const l of labels.filter((x) => x.detector === 'session_misuse')) {
    const c = clients.find((x) => x.id === l.client_id)!;
    const at = Date.parse(l.start);
    const sid = (out.find((e) => e.ev.event_id === l.first_event_id)!.ev.client as { session_id: string })
      .session_id;
    const s = [...sessions.get(c.id)!.values()].find((x) => x.id === sid)!;
    if (
      !out.some(
        (e) =>
          !e.anomalous &&
          e.client === c.id &&
          (e.ev.client as { session_id?: string }).session_id === sid &&
          e.ms < at,
      )
    ) {
      const t0 = at - 15 * 60_000;
      sessionStart(c, t0, s, (e) => out.push(e));
      for (const t of spread(t0, 10, 5, c.r))
        out.push({ ms: t, ev: callEvent(c, t, s), client: c.id, anomalous: false });
    }
  }

  // ---- finalize
  out.sort((a, b) => a.ms - b.ms || (a.ev.event_id as string).localeCompare(b.ev.event_id as string));
  const events: ScenarioEvent[] = out.map((e) => {
    e.ev.ts = iso(e.ms);
    return e.ev as ScenarioEvent;
  });
  const normalDays: Record<'history' | 'eval', Set<string>> = { history: new Set(), eval: new Set() };
  const evalActive: Record<string, Set<string>> = {};
  let anomalous = 0;
  for (const e of out) {
    if (e.anomalous) {
      anomalous++;
      continue;
    }
    if (e.ms >= o.end) continue;
    const d = iso(e.ms).slice(0, 10);
    if (e.ms < evalStart) normalDays.history.add(`${e.client}|${d}`);
    else {
      normalDays.eval.add(`${e.client}|${d}`);
      (evalActive[e.client] ??= new Set()).add(d);
    }
  }
  const manifest: Manifest = {
    prefix: p,
    seed: o.seed,
    start: iso(start),
    evalStart: iso(evalStart),
    end: iso(o.end),
    tailEnd: iso(tailEnd),
    days: o.days,
    evalDays: o.evalDays,
    holiday,
    dstZone: dst ? { tz: dst.tz, at: iso(dst.at) } : null,
    addressPrefix: addressPrefix(p),
    sources,
    servers: [...Object.keys(CATALOG), 'ops'].map((b) => serverName(p, b)),
    clients: clients.map(
      ({ id, archetype, tz, source, servers, tools, address: a, user, since, labels: l }) => ({
        id,
        archetype,
        tz,
        source,
        servers,
        tools,
        address: a,
        user,
        since,
        labels: l,
      }),
    ),
    normalClientDays: { history: normalDays.history.size, eval: normalDays.eval.size },
    evalActiveDays: Object.fromEntries(Object.entries(evalActive).map(([k, v]) => [k, [...v].sort()])),
    events: {
      total: out.length,
      history: out.filter((e) => e.ms < evalStart).length,
      eval: out.filter((e) => e.ms >= evalStart && e.ms < o.end).length,
      tail: out.filter((e) => e.ms >= o.end).length,
      anomalous,
    },
  };
  labels.sort((a, b) => a.start.localeCompare(b.start));
  void steadySources;
  return { options: o, events, labels, manifest };
}

/** Validates every event with the schema package; throws naming the first invalid one. */
export function validateScenario(s: Scenario, now = Date.now()): void {
  for (const e of s.events) {
    const res = validateEvent(e, { now });
    if (!res.ok) throw new Error(`generated event ${e.event_id} (${e.ts}) is invalid: ${res.reason}`);
  }
}

/** Writes events.jsonl (optional), labels.json and manifest.json into `dir`. */
export async function writeScenario(s: Scenario, dir: string, withEvents = true): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'labels.json'), `${JSON.stringify(s.labels, null, 2)}\n`);
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(s.manifest, null, 2)}\n`);
  if (!withEvents) return;
  const w = createWriteStream(join(dir, 'events.jsonl'));
  for (const e of s.events)
    if (!w.write(`${JSON.stringify(e)}\n`)) await new Promise<void>((r) => w.once('drain', () => r()));
  await new Promise<void>((r, j) => w.end((err?: Error | null) => (err ? j(err) : r())));
}

// ---- CLI --------------------------------------------------------------------------------------------

export function parseArgs(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf('=');
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) out[a.slice(2)] = argv[++i]!;
    else out[a.slice(2)] = 'true';
  }
  return out;
}

export function optionsFromArgs(args: Record<string, string>): Partial<ScenarioOptions> & { prefix: string } {
  const num = (k: string, min: number, max: number): number | undefined => {
    if (args[k] === undefined) return undefined;
    const n = Number(args[k]);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new Error(`--${k} must be an integer in [${min}, ${max}], got ${args[k]}`);
    return n;
  };
  const end = args.end === undefined ? undefined : Date.parse(args.end);
  if (end !== undefined && Number.isNaN(end)) throw new Error(`--end must be an ISO date, got ${args.end}`);
  const o: Partial<ScenarioOptions> & { prefix: string } = {
    prefix:
      args.prefix ?? `scn${createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 8)}`,
  };
  const seed = num('seed', 0, 2 ** 31);
  const days = num('days', 14, 29);
  const clients = num('clients', 15, 2000);
  if (seed !== undefined) o.seed = seed;
  if (days !== undefined) o.days = days;
  if (clients !== undefined) o.clients = clients;
  if (end !== undefined) o.end = end;
  return o;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    console.log(
      'usage: generate --out DIR [--seed N] [--days 28] [--clients 40] [--prefix scnXXXX] [--end ISO-day] [--no-events]',
    );
    return;
  }
  const s = generateScenario(optionsFromArgs(args));
  validateScenario(s);
  const dir = resolve(args.out ?? `.local/scenario/${s.manifest.prefix}`);
  await writeScenario(s, dir, args['no-events'] !== 'true');
  console.log(
    JSON.stringify({
      dir,
      prefix: s.manifest.prefix,
      events: s.manifest.events,
      labels: s.labels.length,
      clientDays: s.manifest.normalClientDays,
    }),
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
