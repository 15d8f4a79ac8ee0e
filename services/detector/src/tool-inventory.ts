/**
 * The tool inventory: per (server, tool name), the annotations its listings carried (MCP hints from
 * `tools/list`, stored in events.tool_annotations) and the class the detectors judge calls by.
 *
 * Classes, from the annotations (hints, not guarantees; DESIGN, The event):
 * - `destructive`: destructiveHint true and not read-only;
 * - `send_out`: openWorldHint true and not read-only (it reaches external entities: mail, chat, web);
 * - `read_private`: read-only and openWorldHint false (it reads the closed world: files, databases);
 * - `read_only`: read-only, world unknown or open (a web search);
 * - `unclassified`: no annotations, or hints that say none of the above. An unannotated tool is never
 *   assumed destructive or open-world.
 * A tool can be destructive and send out at once (a remote delete): the flags say so, the class shows
 * the first of destructive, send_out, read_private, read_only.
 *
 * Configured overrides by server and tool name (`toolClasses` in the detector's `periodic` settings)
 * win over the annotations: the class is then exactly the one configured, flags included.
 */
import { z } from 'zod';
import { sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { toolAnnotationsFromText, type ToolAnnotations } from '@mcp-audit/schema';
import { eventsTable, num, T_MS } from './periodic/shared.js';

export const TOOL_CLASSES = ['read_private', 'send_out', 'destructive', 'read_only', 'unclassified'] as const;
export type ToolClass = (typeof TOOL_CLASSES)[number];

export interface Classification {
  class: ToolClass;
  readsPrivate: boolean;
  sendsOut: boolean;
  destructive: boolean;
  /** Where the class came from. */
  basis: 'override' | 'annotations' | 'none';
}

/**
 * One override: `server` and `tool` are exact names or `*` (any). The most specific match wins
 * (server and tool named, then tool only, then server only); among equals, the first listed.
 */
export const ToolClassOverride = z.object({
  server: z.string().min(1).max(1024).default('*'),
  tool: z.string().min(1).max(1024).default('*'),
  class: z.enum(TOOL_CLASSES),
});
export type ToolClassOverride = z.output<typeof ToolClassOverride>;
export const ToolClassOverrides = z.array(ToolClassOverride).max(10_000).default([]);

function flagsOf(c: ToolClass): Omit<Classification, 'basis' | 'class'> {
  return { readsPrivate: c === 'read_private', sendsOut: c === 'send_out', destructive: c === 'destructive' };
}

/** The class of a tool from its annotations alone (undefined: unannotated). */
export function classifyAnnotations(a: ToolAnnotations | undefined): Classification {
  if (a === undefined) return { class: 'unclassified', ...flagsOf('unclassified'), basis: 'none' };
  const readOnly = a.readOnlyHint === true;
  const destructive = !readOnly && a.destructiveHint === true;
  const sendsOut = !readOnly && a.openWorldHint === true;
  const readsPrivate = readOnly && a.openWorldHint === false;
  const cls: ToolClass = destructive
    ? 'destructive'
    : sendsOut
      ? 'send_out'
      : readsPrivate
        ? 'read_private'
        : readOnly
          ? 'read_only'
          : 'unclassified';
  return { class: cls, readsPrivate, sendsOut, destructive, basis: 'annotations' };
}

function overrideFor(
  overrides: readonly ToolClassOverride[],
  server: string,
  tool: string,
): ToolClassOverride | undefined {
  let best: ToolClassOverride | undefined;
  let bestRank = -1;
  for (const o of overrides) {
    if ((o.server !== '*' && o.server !== server) || (o.tool !== '*' && o.tool !== tool)) continue;
    const rank = (o.tool !== '*' ? 2 : 0) + (o.server !== '*' ? 1 : 0);
    if (rank > bestRank) {
      best = o;
      bestRank = rank;
    }
  }
  return best;
}

/** The class of `server`/`tool` with these annotations: a configured override wins. */
export function classifyTool(
  overrides: readonly ToolClassOverride[],
  server: string,
  tool: string,
  a: ToolAnnotations | undefined,
): Classification {
  const o = overrideFor(overrides, server, tool);
  if (o) return { class: o.class, ...flagsOf(o.class), basis: 'override' };
  return classifyAnnotations(a);
}

/**
 * Whether annotations moved towards risk (annotation drift): a read-only claim withdrawn, a destructive
 * hint raised, or a closed world opened. '' (unannotated) before is no claim, so nothing drifts from it.
 */
export function riskierAnnotations(before: string, after: string): string[] {
  const a = toolAnnotationsFromText(before);
  if (a === undefined) return [];
  const b = toolAnnotationsFromText(after) ?? {};
  const out: string[] = [];
  if (a.readOnlyHint === true && b.readOnlyHint !== true) out.push('no longer read-only');
  if (a.destructiveHint !== true && b.destructiveHint === true && b.readOnlyHint !== true)
    out.push('now destructive');
  if (a.openWorldHint === false && b.openWorldHint !== false) out.push('no longer closed-world');
  return out;
}

export const toolKey = (server: string, tool: string): string => `${server}/${tool}`;

/** A listed tool's latest annotations (stored text, '' = none) and when that listing was. */
export interface ListedTool {
  server: string;
  tool: string;
  annotations: string;
  lastListed: number;
}

/** The listings of tools/list (one event per listed tool), as every inventory query reads them. */
export const LISTED_TOOL = sql`kind = 'tool_list' AND method = 'tools/list' AND tool_name != ''`;

/**
 * Latest annotations per server/tool from the stored listings up to an event time, kept
 * incrementally: a later `upTo` reads only the listings since the previous one; an earlier one
 * (a replay from the start) rebuilds. Ties at the same millisecond: the larger text (deterministic).
 */
export class ListingInventory {
  #until = Number.NEGATIVE_INFINITY;
  #tools = new Map<string, ListedTool>();

  constructor(private readonly ch: ClickHouse) {}

  async upTo(end: number): Promise<ReadonlyMap<string, ListedTool>> {
    if (end < this.#until) {
      this.#until = Number.NEGATIVE_INFINITY;
      this.#tools = new Map();
    }
    if (end === this.#until) return this.#tools;
    const from = Number.isFinite(this.#until) ? sql`AND ts >= ${new Date(this.#until)}` : sql``;
    const rows = await this.ch.query<{ server: string; tool: string; a: string; last: string }>(sql`
      SELECT server_name AS server, tool_name AS tool, tool_annotations AS a, max(${T_MS}) AS last
      FROM ${eventsTable(this.ch)}
      WHERE ${LISTED_TOOL} AND ts < ${new Date(end)} ${from}
      GROUP BY server, tool, a`);
    for (const r of rows) {
      const k = toolKey(r.server, r.tool);
      const last = num(r.last);
      const p = this.#tools.get(k);
      if (!p || last > p.lastListed || (last === p.lastListed && r.a > p.annotations))
        this.#tools.set(k, { server: r.server, tool: r.tool, annotations: r.a, lastListed: last });
    }
    this.#until = end;
    return this.#tools;
  }
}

/**
 * The class a call is judged by: the annotations the call carried (what its gateway or SDK knew
 * then), else the latest listing's, and an override over both.
 */
export function classifyCall(
  overrides: readonly ToolClassOverride[],
  inventory: ReadonlyMap<string, ListedTool>,
  call: { server: string; tool: string; annotations: string },
): Classification {
  const text =
    call.annotations !== '' ? call.annotations : inventory.get(toolKey(call.server, call.tool))?.annotations;
  return classifyTool(overrides, call.server, call.tool, toolAnnotationsFromText(text ?? ''));
}

/** One inventory row: what an analyst reads (GET /api/v1/tools, `detector tools`). */
export interface InventoryEntry {
  server: string;
  tool: string;
  /** Every distinct annotations text seen in listings, oldest first ('' = listed without any). */
  annotationsSeen: Array<{ annotations: ToolAnnotations | null; firstListed: string; lastListed: string }>;
  current: ToolAnnotations | null;
  classification: Classification;
  definitionHashes: number;
  clients: number;
  sources: number;
}

/** The inventory over listings in [from, to), classified with `overrides`. */
export async function readInventory(
  ch: ClickHouse,
  overrides: readonly ToolClassOverride[],
  range: { from: number; to: number },
  limit = 10_000,
): Promise<InventoryEntry[]> {
  const rows = await ch.query<{
    server: string;
    tool: string;
    seen: Array<[string, string, string]>;
    hashes: string;
    clients: string;
    sources: string;
  }>(sql`
    SELECT server, tool, groupArray((a, first, last)) AS seen,
           max(h) AS hashes, max(c) AS clients, max(s) AS sources
    FROM (
      SELECT server_name AS server, tool_name AS tool, tool_annotations AS a,
             toString(min(${T_MS})) AS first, toString(max(${T_MS})) AS last,
             uniqExact(tool_definition_hash) AS h, uniqExact(client_id) AS c, uniqExact(source_id) AS s
      FROM ${eventsTable(ch)}
      WHERE ${LISTED_TOOL} AND ts >= ${new Date(range.from)} AND ts < ${new Date(range.to)}
      GROUP BY server, tool, a)
    GROUP BY server, tool
    ORDER BY server, tool
    LIMIT ${limit}`);
  return rows.map((r) => {
    const seen = [...r.seen].sort((x, y) => Number(x[1]) - Number(y[1]));
    const latest = [...seen].sort((x, y) => Number(y[2]) - Number(x[2]) || (x[0] < y[0] ? 1 : -1))[0];
    const current = toolAnnotationsFromText(latest?.[0] ?? '') ?? null;
    const iso = (ms: string) => new Date(Number(ms)).toISOString();
    return {
      server: r.server,
      tool: r.tool,
      annotationsSeen: seen.map(([a, first, last]) => ({
        annotations: toolAnnotationsFromText(a) ?? null,
        firstListed: iso(first),
        lastListed: iso(last),
      })),
      current,
      classification: classifyTool(overrides, r.server, r.tool, current ?? undefined),
      definitionHashes: num(r.hashes),
      clients: num(r.clients),
      sources: num(r.sources),
    };
  });
}
