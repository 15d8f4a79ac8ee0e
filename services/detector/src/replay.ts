import { dbIdent, sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Logger } from '@mcp-audit/service-kit';
import type { AlertMessage } from '@mcp-audit/schema';
import { Lifecycle, type AlertSink, type Outputs } from './alert.lifecycle.js';
import { BaselineStore, clickHouseBaselineSource } from './baseline.store.js';
import type { DetectorConfig } from './config.js';
import { createEventsWatermark, createPeriodicDetectors, createPeriodicRunner } from './periodic/index.js';
import { StreamEngine, type DetectorEvent } from './stream.engine.js';
import { HOUR_MS } from './time.js';

/**
 * Replay: the live detection over stored events. Events come from mcp_audit.events (one row per
 * event_id: the copy with the highest ver among its copies in the replayed range) in ts order, hour
 * by hour, into a fresh engine and lifecycle exactly as the consumer
 * feeds them (as one partition: in ts order nothing is late), then the periodic detectors run over
 * the same range. Alerts go to `sink` (a file by default, the live tables only when asked).
 */
export interface ReplayOptions {
  reader: ClickHouse;
  config: DetectorConfig;
  log: Logger;
  from: number;
  to: number;
  sink: AlertSink;
  periodic?: boolean;
  /** Only these clients (streaming part); all when unset. */
  clientIds?: string[];
  onProgress?: (p: { done: number; total: number; events: number; messages: number }) => void;
}

export interface ReplayResult {
  events: number;
  messages: number;
  alerts: number;
  resolved: number;
  late: number;
}

interface EventRow {
  event_id: string;
  t: string;
  ts_ms: string;
  client_id: string;
  server_name: string;
  tool_name: string;
  outcome: string;
  tool_is_error: number | null;
  auth_result: string;
  bytes: string;
  client_ip: string;
  session_id: string;
  label_keys: string[];
  label_values: string[];
}

export function rowToEvent(r: EventRow): DetectorEvent {
  const labels: Record<string, string> = {};
  r.label_keys.forEach((k, i) => (labels[k] = r.label_values[i] ?? ''));
  return {
    eventId: r.event_id,
    ts: Number(r.t) * 1000 + Number(r.ts_ms),
    clientId: r.client_id,
    server: r.server_name,
    tool: r.tool_name,
    isError: r.outcome === 'error' || r.outcome === 'denied' || Number(r.tool_is_error) === 1,
    authFailed: r.outcome === 'auth_failed' || r.auth_result === 'failure',
    bytes: Number(r.bytes),
    ip: r.client_ip,
    session: r.session_id,
    ...(r.label_keys.length > 0 ? { labels } : {}),
  };
}

async function readHour(
  ch: ClickHouse,
  start: number,
  end: number,
  firstVer: ReadonlyMap<string, number>,
  clientIds?: string[],
): Promise<DetectorEvent[]> {
  const only = clientIds && clientIds.length > 0 ? sql`AND client_id IN ${tuple(clientIds)}` : sql``;
  const rows = await ch.query<EventRow & { ver: number }>(sql`
    SELECT event_id, toUInt32(ts) AS t, ts_ms, client_id, server_name, tool_name, outcome, tool_is_error,
           auth_result, request_bytes + response_bytes AS bytes, client_ip, session_id, label_keys,
           label_values, ver
    FROM ${dbIdent(ch.database)}.events
    WHERE ts >= ${new Date(start)} AND ts < ${new Date(end)} ${only}
    ORDER BY ts, ts_ms, client_id, event_id, ver DESC`);
  // Only the copy every query sees (the highest ver); the engine drops same-ver repeats by id.
  return rows.filter((r) => (firstVer.get(r.event_id) ?? Number(r.ver)) === Number(r.ver)).map(rowToEvent);
}

/**
 * The highest ver of every event id stored more than once with its event time in [from, to) (ids
 * stored once need no entry). A copy with a lower ver is a redelivery or a forgery and is skipped
 * wherever its ts puts it, so a forged copy in another hour is not a second event either.
 */
async function firstVersions(ch: ClickHouse, from: number, to: number): Promise<Map<string, number>> {
  const rows = await ch.query<{ id: string; ver: number }>(sql`
    SELECT toString(event_id) AS id, max(ver) AS ver FROM ${dbIdent(ch.database)}.events
    WHERE ts >= ${new Date(from)} AND ts < ${new Date(to)}
    GROUP BY event_id HAVING count() > 1`);
  return new Map(rows.map((r) => [r.id, Number(r.ver)]));
}

export async function runReplay(o: ReplayOptions): Promise<ReplayResult> {
  const from = Math.floor(o.from / HOUR_MS) * HOUR_MS;
  const to = o.to;
  let messages = 0;
  let alerts = 0;
  let resolved = 0;
  const counting: AlertSink = {
    async write(out: Outputs) {
      for (const m of out.messages) {
        messages++;
        if (m.type === 'alert') alerts++;
        else if (m.status === 'resolved') resolved++;
      }
      await o.sink.write(out);
    },
  };
  const lifecycle = new Lifecycle({ sink: counting, log: o.log, origin: 'replay' });
  const store = new BaselineStore(clickHouseBaselineSource(o.reader), o.log);
  await store.refresh();
  const engine = new StreamEngine({
    store,
    config: o.config,
    actions: {
      raise: (f) => lifecycle.raiseNow(f),
      resolve: (k, at, reason) => lifecycle.resolveNow(k, at, reason),
      isOpen: (k) => lifecycle.openAlert(k),
    },
  });
  const hours = Math.max(1, Math.ceil((to - from) / HOUR_MS));
  const firstVer = await firstVersions(o.reader, from, to);
  let events = 0;
  for (let i = 0; i < hours; i++) {
    const start = from + i * HOUR_MS;
    const end = Math.min(to, start + HOUR_MS);
    const batch = await readHour(o.reader, start, end, firstVer, o.clientIds);
    await store.prepare(engine.needs(batch));
    for (const e of batch) engine.process(e, 0);
    engine.advance(0);
    events += batch.length;
    await lifecycle.flush();
    o.onProgress?.({ done: i + 1, total: hours + (o.periodic ? 1 : 0), events, messages });
  }
  engine.closeAll(to);
  await lifecycle.flush();
  if (o.periodic) {
    const pcfg = o.config.periodic;
    const runner = createPeriodicRunner({
      detectors: createPeriodicDetectors({ ch: o.reader, config: pcfg, log: o.log }),
      lifecycle,
      watermark: createEventsWatermark(o.reader),
      lateMs: o.config.allowedLatenessMs,
      log: o.log,
    });
    await runner.runRange(from, to);
    await lifecycle.flush();
    o.onProgress?.({ done: hours + 1, total: hours + 1, events, messages });
  }
  return { events, messages, alerts, resolved, late: engine.stats.late };
}

/** Collects messages in memory (tests, comparisons). */
export function memorySink(): AlertSink & { messages: AlertMessage[]; outputs: Outputs[] } {
  const messages: AlertMessage[] = [];
  const outputs: Outputs[] = [];
  return {
    messages,
    outputs,
    async write(out) {
      outputs.push(out);
      messages.push(...out.messages);
    },
  };
}

/** What replay and live must agree on for one alert. */
export const comparable = (m: AlertMessage) =>
  m.type === 'alert'
    ? { type: m.type, dedup_key: m.dedup_key, window: m.window, observed: m.observed, severity: m.severity }
    : { type: m.type, dedup_key: m.dedup_key, status: m.status, changed_at: m.changed_at };
