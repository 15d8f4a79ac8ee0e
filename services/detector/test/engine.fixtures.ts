import { createLogger } from '@mcp-audit/service-kit';
import type { AlertMessage } from '@mcp-audit/schema';
import { Lifecycle } from '../src/alert.lifecycle.js';
import {
  aggregateAll,
  buildGrid,
  computeClientBaseline,
  type Baseline,
  type ClientHistory,
  type HourlyRow,
} from '../src/baseline.js';
import { BaselineStore, type BaselineSource } from '../src/baseline.store.js';
import { parseDetectorConfig, type DetectorConfig } from '../src/config.js';
import type { Finding } from '../src/model.js';
import { StreamEngine, type DetectorEvent } from '../src/stream.engine.js';
import { HOUR_MS, localTime } from '../src/time.js';
import { memorySink } from '../src/replay.js';

export const silent = createLogger('detector-test', { level: 'silent' });
export const H = HOUR_MS;
export const MIN = 60_000;

/** mulberry32: reproducible noise. */
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

export interface Habit {
  id: string;
  tz: string;
  /** Calls in this hour (local time parts), 0 = idle. */
  calls: (lt: { isoDow: number; hour: number }, r: () => number) => number;
  tools: string[];
  servers: string[];
  errorShare?: number;
  bytesPerCall?: number;
}

/** Hourly rollups of a habit over [from, to) (what events_hourly would hold). */
export function history(h: Habit, from: number, to: number, seed = 1): ClientHistory {
  const r = rng(seed);
  const hours: HourlyRow[] = [];
  const tools = new Map<string, number>();
  const servers = new Map<string, number>();
  for (let t = from; t < to; t += H) {
    const calls = h.calls(localTime(t, h.tz), r);
    if (calls <= 0) continue;
    const nt = Math.min(h.tools.length, 2 + Math.floor(r() * (h.tools.length - 1)));
    for (const x of h.tools.slice(0, nt)) tools.set(x, (tools.get(x) ?? 0) + 1);
    for (const x of h.servers) servers.set(x, (servers.get(x) ?? 0) + 1);
    hours.push({
      hour: t,
      calls,
      errors: Math.round(calls * (h.errorShare ?? 0.02)),
      authFailures: 0,
      tools: nt,
      servers: h.servers.length,
      bytes: calls * (h.bytesPerCall ?? 2_000),
    });
  }
  return { clientId: h.id, hours, tools, servers };
}

export function baselinesFor(
  habits: Habit[],
  asOf: number,
  cfg: DetectorConfig,
  extra: ClientHistory[] = [],
): Baseline[] {
  const opts = {
    asOf,
    windowDays: cfg.baseline.windowDays,
    learningActiveDays: cfg.baseline.learningActiveDays,
  };
  const from = asOf - cfg.baseline.windowDays * 24 * H;
  const clients = habits.map((h, i) =>
    computeClientBaseline(
      history(h, from, asOf, i + 1),
      buildGrid(from, cfg.baseline.windowDays, h.tz),
      opts,
    ),
  );
  for (const x of extra)
    clients.push(computeClientBaseline(x, buildGrid(from, cfg.baseline.windowDays, 'UTC'), opts));
  return [...clients, ...aggregateAll(clients, opts)];
}

export function memorySource(all: Baseline[]): BaselineSource {
  return {
    versions: async () =>
      [...new Set(all.filter((b) => b.kind === 'global').map((b) => b.asOf))].sort((a, b) => a - b),
    clients: async (asOf, ids) =>
      all.filter((b) => b.kind === 'client' && b.asOf === asOf && ids.includes(b.clientId)),
    aggregates: async (asOf) => all.filter((b) => b.kind !== 'client' && b.asOf === asOf),
  };
}

let seq = 0;
export const uuid = (n = ++seq) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

export function ev(clientId: string, ts: number, o: Partial<DetectorEvent> = {}): DetectorEvent {
  return {
    eventId: uuid(),
    ts,
    clientId,
    server: 'filesystem',
    tool: 'read_file',
    isError: false,
    authFailed: false,
    bytes: 2_000,
    ip: '10.0.0.1',
    session: 's1',
    ...o,
  };
}

/** n events spread evenly over [start, start + span). */
export function burst(
  clientId: string,
  start: number,
  n: number,
  o: Partial<DetectorEvent> | ((i: number) => Partial<DetectorEvent>) = {},
  span = H,
): DetectorEvent[] {
  return Array.from({ length: n }, (_, i) =>
    ev(clientId, start + Math.floor((i * span) / n), typeof o === 'function' ? o(i) : o),
  );
}

export interface Harness {
  engine: StreamEngine;
  lifecycle: Lifecycle;
  messages: AlertMessage[];
  findings: Finding[];
  feed(events: DetectorEvent[], partition?: (e: DetectorEvent) => number): Promise<void>;
  alerts(): Extract<AlertMessage, { type: 'alert' }>[];
  resolved(): Extract<AlertMessage, { type: 'state_change' }>[];
}

export async function harness(
  all: Baseline[],
  config: DetectorConfig = parseDetectorConfig({}),
): Promise<Harness> {
  const sink = memorySink();
  const lifecycle = new Lifecycle({ sink, log: silent, origin: 'replay', now: () => 0 });
  const store = new BaselineStore(memorySource(all), silent);
  await store.refresh();
  const findings: Finding[] = [];
  const engine = new StreamEngine({
    store,
    config,
    actions: {
      raise: (f) => (findings.push(f), lifecycle.raiseNow(f)),
      resolve: (k, at, reason) => lifecycle.resolveNow(k, at, reason),
      isOpen: (k) => lifecycle.openAlert(k),
    },
  });
  return {
    engine,
    lifecycle,
    messages: sink.messages,
    findings,
    async feed(events, partition = () => 0) {
      await store.prepare(engine.needs(events));
      const parts = new Set<number>();
      for (const e of events) {
        const p = partition(e);
        parts.add(p);
        engine.process(e, p);
      }
      for (const p of parts) engine.advance(p);
      await lifecycle.flush();
    },
    alerts: () =>
      sink.messages.filter((m): m is Extract<AlertMessage, { type: 'alert' }> => m.type === 'alert'),
    resolved: () =>
      sink.messages.filter(
        (m): m is Extract<AlertMessage, { type: 'state_change' }> => m.type === 'state_change',
      ),
  };
}

/** Events sorted by ts (ties by client, then id), as the replay reads them. */
export const byTs = (a: DetectorEvent, b: DetectorEvent) =>
  a.ts - b.ts ||
  (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : a.eventId < b.eventId ? -1 : 1);
