import { z } from 'zod';
import { join, sql, tuple, type SqlFragment } from '@mcp-audit/clickhouse';

/**
 * The events search's filters (services/api query.params.ts), for exports: each a list of exact
 * values (any of them matches), all filters must match; `label` is `key=value` (values of one key
 * are alternatives). Applied to every stored copy before one copy per event_id is chosen.
 */
const many = z.array(z.string().max(1024)).max(100).default([]);
export const exportFiltersSchema = z
  .object({
    client: many,
    user: many,
    ip: many,
    session: many,
    source: many,
    server: many,
    tool: many,
    method: many,
    kind: many,
    outcome: many,
    label: z
      .array(
        z
          .string()
          .max(400)
          .regex(/^[^=]{1,128}=[\s\S]{0,256}$/, 'label must be key=value'),
      )
      .max(100)
      .default([]),
  })
  .strict();
export type ExportFilters = z.infer<typeof exportFiltersSchema>;

const COLUMNS: Record<Exclude<keyof ExportFilters, 'label'>, SqlFragment> = {
  client: sql`client_id`,
  user: sql`client_user`,
  ip: sql`client_ip`,
  session: sql`session_id`,
  source: sql`source_id`,
  server: sql`server_name`,
  tool: sql`tool_name`,
  method: sql`method`,
  kind: sql`kind`,
  outcome: sql`outcome`,
};

export const FILTER_KEYS = [
  'client',
  'user',
  'ip',
  'session',
  'source',
  'server',
  'tool',
  'method',
  'kind',
  'outcome',
  'label',
] as const;

export const hasFilters = (f: ExportFilters): boolean => Object.values(f).some((v) => v.length > 0);

/** `1` when there is no filter, else the AND of the filters. */
export function filtersSql(f: ExportFilters): SqlFragment {
  const parts: SqlFragment[] = [];
  for (const [k, colSql] of Object.entries(COLUMNS) as Array<[keyof typeof COLUMNS, SqlFragment]>) {
    if (f[k].length > 0) parts.push(sql`${colSql} IN ${tuple(f[k])}`);
  }
  const byKey = new Map<string, string[]>();
  for (const l of f.label) {
    const i = l.indexOf('=');
    const k = l.slice(0, i);
    byKey.set(k, [...(byKey.get(k) ?? []), l.slice(i + 1)]);
  }
  for (const [k, vs] of byKey)
    parts.push(sql`arrayExists((k, v) -> k = ${k} AND v IN ${tuple(vs)}, label_keys, label_values)`);
  return parts.length === 0 ? sql`1` : sql`(${join(parts, sql` AND `)})`;
}
