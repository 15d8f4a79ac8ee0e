import { z } from 'zod';
import { ApiError } from './errors.js';

/**
 * Request parameters shared by the query routes, as zod schemas (they also generate the OpenAPI
 * document). Every string and every list is capped here, so a hostile value is a clear 400 before any
 * SQL is built; what passes reaches SQL only through the literal encoder.
 */
export const MAX_VALUE = 256;
export const MAX_VALUES = 100;
export const MAX_Q = 200;

const value = z.string().min(1).max(MAX_VALUE);
/** A repeatable filter: `client=a&client=b` arrives as an array, `client=a` as a string. */
export const many = (inner: z.ZodType<string> = value) =>
  z.union([inner, z.array(inner).max(MAX_VALUES)]).optional();
export const iso = z.iso.datetime({ offset: true, local: false });

export const rangeQuery = {
  from: iso.optional().describe('ISO-8601; default: `to` minus 24 hours'),
  to: iso.optional().describe('ISO-8601; default: now'),
};
export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(512).optional(),
};

export const LABEL = /^[^=]{1,128}=[\s\S]{0,256}$/;

export const eventFilterQuery = {
  ...rangeQuery,
  client: many(),
  user: many(),
  ip: many(),
  session: many(),
  source: many(),
  server: many(),
  tool: many(),
  method: many(),
  kind: many(),
  outcome: many(),
  label: many(z.string().max(400).regex(LABEL, 'label must be key=value')),
  q: z.string().min(1).max(MAX_Q).optional(),
};
export const eventFilterSchema = z.object(eventFilterQuery);
export type EventFilterInput = z.infer<typeof eventFilterSchema>;

export const list = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v];

export interface Range {
  from: number;
  to: number;
}

/** The time range of a query: default the last 24 h, `from < to`, at most `maxDays`. */
export function resolveRange(
  q: { from?: string | undefined; to?: string | undefined },
  maxDays: number,
  now = Date.now(),
  defaultMs = 24 * 3_600_000,
): Range {
  const to = q.to === undefined ? now : Date.parse(q.to);
  const from = q.from === undefined ? to - defaultMs : Date.parse(q.from);
  if (!(from < to)) throw new ApiError('AUDIT_ERR_VALIDATION', 'from: must be before to');
  if (to - from > maxDays * 86_400_000)
    throw new ApiError('AUDIT_ERR_VALIDATION', `from: the range is capped at ${maxDays} days; narrow it`);
  if (from < 0 || to > 0xffffffff * 1000) throw new ApiError('AUDIT_ERR_VALIDATION', 'from: out of range');
  return { from, to };
}

export const rangeOut = (r: Range) => ({
  from: new Date(r.from).toISOString(),
  to: new Date(r.to).toISOString(),
});

/** Opaque keyset cursors: base64url JSON, validated on the way back in. */
export function encodeCursor(parts: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export function decodeCursor<T extends z.ZodType>(
  cursor: string | undefined,
  schema: T,
): z.infer<T> | undefined {
  if (cursor === undefined) return undefined;
  try {
    const r = schema.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    if (r.success) return r.data;
  } catch {
    // fall through
  }
  throw new ApiError('AUDIT_ERR_VALIDATION', 'cursor: not a cursor this API issued');
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const uuidParam = z
  .string()
  .transform((s) => s.toLowerCase())
  .pipe(z.string().regex(UUID_RE, 'must be a UUID'));
