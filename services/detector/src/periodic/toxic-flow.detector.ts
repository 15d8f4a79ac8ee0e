import { sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { PeriodicConfig } from '../config.js';
import type { Finding } from '../model.js';
import {
  classifyCall,
  classifyTool,
  LISTED_TOOL,
  ListingInventory,
  toolKey,
  type Classification,
} from '../tool-inventory.js';
import { toolAnnotationsFromText } from '@mcp-audit/schema';
import { eventsTable, firstCopies, iso, makeFinding, num, T_MS, tsBetween } from './shared.js';
import type { Evaluation, PeriodicDetector } from './types.js';
import { sparseWindowByWindow } from './window-by-window.js';

/**
 * toxic_flow: within one session, a call of a tool that reads private data followed by a call of a
 * tool that sends data out (open world), the classic exfiltration path of a prompt-injected agent
 * (read ~/.ssh, then post it). Tools are classed by the tool inventory (src/tool-inventory.ts): the
 * call's own annotations, else the latest listing's, a configured override over both. Sessions that
 * only read or only send stay quiet, and unannotated tools are unclassified: they never make a flow.
 *
 * Periodic, although sessions belong to one client (the topic's key) and a streaming detector could
 * see them: the class of a call often comes from a listing the call does not carry (an SDK server
 * listed before the wrap, a gateway restarted mid-session), and the stored listings are the only view
 * every instance shares; a window of 5 minutes bounds the delay. A send in the window is paired with
 * the earliest private read of its session within `lookbackMs` before it, so a flow across windows is
 * found in the window of its send, exactly once.
 *
 * One alert per (client, session). It never resolves by itself (data that left does not come back):
 * it expires `expireMs` (24 h) of event time after it opened; a flow in another session is another
 * alert, a later flow in the same session after expiry a new one.
 *
 * Over a range of windows only those holding a call that may send out are evaluated (a flow is found
 * in the window of its send): a call's own annotations decide, or, for a call without, any of the
 * annotations its tool was ever listed with, or none.
 */

interface Call {
  id: string;
  t: number;
  client: string;
  session: string;
  server: string;
  tool: string;
  annotations: string;
}

export interface FlowCall {
  id: string;
  t: number;
  server: string;
  tool: string;
  cls: Classification;
}

export interface Flow {
  client: string;
  session: string;
  read: FlowCall;
  send: FlowCall;
  /** Private reads and sends of the session in the flow's span (the data's path). */
  reads: FlowCall[];
  sends: FlowCall[];
}

/**
 * Pure core: per session, the first send at or after `start` that follows a private read by at most
 * `lookbackMs`, unless an earlier send (before `start`) already followed those reads (that flow was
 * found in its own window). Calls in any order; judged in time order, ties by id.
 */
export function findFlows(
  calls: ReadonlyArray<Call & { cls: Classification }>,
  start: number,
  lookbackMs: number,
): Flow[] {
  const bySession = new Map<string, Array<Call & { cls: Classification }>>();
  for (const c of calls) {
    const k = `${c.client}\u0000${c.session}`;
    const list = bySession.get(k) ?? [];
    list.push(c);
    bySession.set(k, list);
  }
  const flows: Flow[] = [];
  for (const list of bySession.values()) {
    list.sort((a, b) => a.t - b.t || (a.id < b.id ? -1 : 1));
    let reads: FlowCall[] = [];
    for (const c of list) {
      const fc: FlowCall = { id: c.id, t: c.t, server: c.server, tool: c.tool, cls: c.cls };
      if (c.cls.sendsOut) {
        const recent = reads.filter((r) => c.t - r.t <= lookbackMs);
        // A send before the window made its flow there: those reads are reported already.
        if (c.t < start) {
          if (recent.length > 0) reads = [];
        } else if (recent.length > 0) {
          const sends = list
            .filter((x) => x.cls.sendsOut && x.t >= c.t)
            .map((x) => ({ id: x.id, t: x.t, server: x.server, tool: x.tool, cls: x.cls }));
          flows.push({
            client: c.client,
            session: c.session,
            read: recent[0]!,
            send: fc,
            reads: recent,
            sends,
          });
          break;
        }
      }
      if (c.cls.readsPrivate) reads.push(fc);
    }
  }
  return flows.sort((a, b) => a.send.t - b.send.t || (a.send.id < b.send.id ? -1 : 1));
}

export function toxicFlowDetector(
  ch: ClickHouse,
  cfg: PeriodicConfig['toxicFlow'],
  toolClasses: PeriodicConfig['toolClasses'],
): PeriodicDetector {
  const windowMs = cfg.windowMs;
  const inventory = new ListingInventory(ch);
  const detector: PeriodicDetector = {
    name: 'toxic_flow',
    windowMs,
    expireMs: cfg.expireMs,
    async evaluate(start, end): Promise<Evaluation> {
      const listed = await inventory.upTo(end);
      // Sessions with a call in the window; then all their calls in the lookback (few sessions).
      const sessions = await ch.query<{ client: string; session: string }>(sql`
        SELECT DISTINCT client_id AS client, session_id AS session
        FROM ${eventsTable(ch)}
        WHERE ${firstCopies(ch, start, end)} AND kind = 'tool_call' AND session_id != ''`);
      if (sessions.length === 0) return { findings: [], resolved: [] };
      const rows = await ch.query<{
        id: string;
        t: string;
        client: string;
        session: string;
        server: string;
        tool: string;
        a: string;
      }>(sql`
        SELECT toString(event_id) AS id, min(${T_MS}) AS t, any(client_id) AS client, any(session_id) AS session,
               any(server_name) AS server, any(tool_name) AS tool, any(tool_annotations) AS a
        FROM ${eventsTable(ch)}
        WHERE ${firstCopies(ch, start - cfg.lookbackMs, end)} AND kind = 'tool_call'
          AND concat(client_id, '/', session_id) IN ${tuple(sessions.map((s) => [s.client, s.session].join('/')))}
        GROUP BY event_id`);
      const calls = rows.map((r) => {
        const c: Call = {
          id: r.id,
          t: num(r.t),
          client: r.client,
          session: r.session,
          server: r.server,
          tool: r.tool,
          annotations: r.a,
        };
        return { ...c, cls: classifyCall(toolClasses, listed, c) };
      });
      const findings = findFlows(calls, start, cfg.lookbackMs).map((f) => flowFinding(f, start, end));
      return { findings, resolved: [] };
    },
  };
  detector.evaluateRange = sparseWindowByWindow(windowMs, maySend, (start, end) =>
    detector.evaluate(start, end),
  );
  return detector;

  /** The windows in [from, to) with a session call that may send out, whatever the inventory says then. */
  async function maySend(from: number, to: number): Promise<number[]> {
    const calls = await ch.query<{ server: string; tool: string; a: string; ws: string[] }>(sql`
      SELECT server_name AS server, tool_name AS tool, tool_annotations AS a,
             groupUniqArray(intDiv(${T_MS}, ${windowMs})) AS ws
      FROM ${eventsTable(ch)}
      WHERE ${tsBetween(from, to)} AND kind = 'tool_call' AND session_id != ''
      GROUP BY server, tool, a`);
    if (calls.length === 0) return [];
    const listed = await ch.query<{ k: string; texts: string[] }>(sql`
      SELECT concat(server_name, '/', tool_name) AS k, groupUniqArray(tool_annotations) AS texts
      FROM ${eventsTable(ch)} WHERE ts < ${new Date(to)} AND ${LISTED_TOOL}
      GROUP BY k`);
    const seen = new Map(listed.map((l) => [l.k, l.texts]));
    const sends = (c: { server: string; tool: string }, a: string) =>
      classifyTool(toolClasses, c.server, c.tool, toolAnnotationsFromText(a)).sendsOut;
    const out: number[] = [];
    for (const c of calls) {
      const texts = c.a !== '' ? [c.a] : ['', ...(seen.get(`${c.server}/${c.tool}`) ?? [])];
      if (texts.some((a) => sends(c, a))) for (const w of c.ws) out.push(num(w) * windowMs);
    }
    return out;
  }

  function flowFinding(f: Flow, start: number, end: number): Finding {
    const name = (c: FlowCall) => toolKey(c.server, c.tool);
    const call = (c: FlowCall) => `${name(c)} (${c.cls.class}, event ${c.id} at ${iso(c.t)})`;
    const path = [...new Set([...f.reads.map(name), name(f.send)])].join(' → ');
    const count = (list: FlowCall[]) => {
      const m = new Map<string, number>();
      for (const c of list) m.set(name(c), (m.get(name(c)) ?? 0) + 1);
      return [...m].map(([value, n]) => ({ value, count: n }));
    };
    return makeFinding({
      detector: 'toxic_flow',
      subject: `${f.client}/${f.session}`,
      clientId: f.client,
      windowMs,
      windowStart: start,
      windowEnd: end,
      severity: 'high',
      title: `Toxic flow in a session of ${f.client}: ${name(f.read)} then ${name(f.send)}`,
      summary:
        `In session ${f.session} of client ${f.client}, ${call(f.read)} read private data and then ` +
        `${call(f.send)} sent data out, ${Math.round((f.send.t - f.read.t) / 1000)} s later. ` +
        `The data's path: ${path}. A read of private data followed by a call that reaches the open world ` +
        'is how a prompt-injected agent exfiltrates: check what the send carried (its arguments) and ' +
        'where it went, then acknowledge.',
      observed: f.reads.length + f.sends.length,
      expected: { low: 0, high: 0 },
      score: f.sends.length,
      contributors: {
        tools: [...count(f.reads), ...count(f.sends)],
        sessions: [{ value: f.session, count: 1 }],
      },
      sampleEventIds: [f.read.id, f.send.id, ...f.reads.map((c) => c.id), ...f.sends.map((c) => c.id)],
      detectedAt: f.send.t,
    });
  }
}
