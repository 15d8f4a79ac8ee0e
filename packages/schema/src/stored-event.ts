import { toolAnnotationsFromText } from './annotations.js';
import { canonicalJson } from './canonical.js';

/**
 * A stored row of mcp_audit.events back to the event (schemas/clickhouse/001_events.sql, 010, 013).
 *
 * The typed columns hold every field of the v1 contract; the `raw` column holds only the REMAINDER:
 * what `fromEventRow` cannot give back (fields the schema does not know, a value whose stored form
 * differs, `tool.annotations` as received). Rows stored before migration 013 hold the whole event in
 * `raw` instead. The two are told apart by shape, never guessed:
 * - `''`: nothing remains (the usual case: an event with only known fields and no annotations);
 * - `{"remainder":{…}}`: an object with that single key. A full copy can never look like this: every
 *   stored event passed the v1 schema, so it has `schema_version`, `event_id`, `ts`, …;
 * - anything else: a full copy (an older row).
 * Either way the event is `fromEventRow(row)` deep-merged with the object in `raw` (objects merge
 * member by member, anything else replaces), so readers call `reconstructEvent` and never read `raw`.
 */

export const REMAINDER_KEY = 'remainder';

type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Sets a member, `__proto__` included, as an own property (never the prototype). */
function put(o: Obj, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
const opt = (v: unknown): string | undefined => (str(v) === '' ? undefined : str(v));
const num = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));

function dropUndefined<T extends Obj>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

/** Parse ClickHouse's DateTime text ('YYYY-MM-DD hh:mm:ss', UTC) or epoch seconds. */
function dateTimeToMs(v: unknown): number {
  if (typeof v === 'number') return v * 1000;
  const s = String(v);
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  return Date.parse(`${s.replace(' ', 'T')}Z`);
}

/**
 * The v1 event the typed columns of a stored row hold (a JSONEachRow SELECT, an EventRow, or a
 * canonical row's values). Without `raw`: unknown fields and annotations members the schema
 * does not know are not here; `reconstructEvent` adds them.
 */
export function fromEventRow(row: Obj): Obj {
  const keys = (row.label_keys as string[] | undefined) ?? [];
  const values = (row.label_values as string[] | undefined) ?? [];
  const ts = new Date(dateTimeToMs(row.ts) + Number(row.ts_ms ?? 0)).toISOString();
  const toolName = opt(row.tool_name);
  const authMethod = opt(row.auth_method);
  const errorCode = opt(row.error_code);
  const toolIsError = num(row.tool_is_error);
  return dropUndefined({
    schema_version: Number(row.schema_version),
    event_id: str(row.event_id),
    ts,
    kind: str(row.kind),
    source: { type: str(row.source_type), id: str(row.source_id), version: str(row.source_version) },
    client: dropUndefined({
      id: str(row.client_id),
      name: opt(row.client_name),
      user: opt(row.client_user),
      agent: opt(row.client_agent),
      ip: opt(row.client_ip),
      user_agent: opt(row.client_user_agent),
      session_id: opt(row.session_id),
    }),
    server: dropUndefined({
      name: str(row.server_name),
      version: opt(row.server_version),
      transport: str(row.server_transport),
    }),
    method: str(row.method),
    tool: toolName
      ? dropUndefined({
          name: toolName,
          definition_hash: opt(row.tool_definition_hash),
          annotations: toolAnnotationsFromText(str(row.tool_annotations)),
        })
      : undefined,
    outcome: str(row.outcome),
    http_status: num(row.http_status),
    rpc_error_code: num(row.rpc_error_code),
    tool_is_error: toolIsError === undefined ? undefined : toolIsError === 1,
    trace_id: opt(row.trace_id),
    auth: authMethod
      ? dropUndefined({ method: authMethod, result: str(row.auth_result), reason: opt(row.auth_reason) })
      : undefined,
    error: errorCode !== undefined ? { code: errorCode, message: str(row.error_message) } : undefined,
    duration_ms: Number(row.duration_ms),
    request_bytes: Number(row.request_bytes),
    response_bytes: Number(row.response_bytes),
    args: str(row.args) === '' ? undefined : (JSON.parse(str(row.args)) as unknown),
    response_digest: opt(row.response_digest),
    labels: keys.length > 0 ? Object.fromEntries(keys.map((k, i) => [k, values[i] ?? ''])) : undefined,
  });
}

/** Equal as JSON values (object members in any order). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && jsonEqual((a as Obj)[k], (b as Obj)[k]));
}

/** The members of `full` that `base` does not already hold (recursively into objects). */
function diff(full: Obj, base: Obj): Obj {
  const out: Obj = {};
  for (const k of Object.keys(full)) {
    const f = full[k];
    const b = Object.hasOwn(base, k) ? base[k] : undefined;
    if (b === undefined) put(out, k, f);
    else if (isObject(f) && isObject(b)) {
      const d = diff(f, b);
      if (Object.keys(d).length > 0) put(out, k, d);
    } else if (!jsonEqual(f, b)) put(out, k, f);
  }
  return out;
}

/** `base` with `over` merged in: objects member by member, anything else replaced. Copies. */
function merge(base: Obj, over: Obj): Obj {
  const out: Obj = {};
  for (const k of Object.keys(base)) put(out, k, base[k]);
  for (const k of Object.keys(over)) {
    const b = out[k];
    const o = over[k];
    put(out, k, isObject(b) && isObject(o) && Object.hasOwn(out, k) ? merge(b, o) : o);
  }
  return out;
}

/**
 * The `raw` column of a row whose typed columns rebuild to `base` (`fromEventRow` of the row): the
 * members of the stored (redacted) event `event` that `base` lacks or holds otherwise, and
 * `tool.annotations` as received (the integrity ledger's v1 row covers annotations only through
 * `raw`: its column list is frozen without `tool_annotations`). '' when nothing remains.
 */
export function remainderOf(event: Obj, base: Obj): string {
  const rest = diff(event, base);
  const tool = event.tool;
  if (isObject(tool) && tool.annotations !== undefined) {
    const t = isObject(rest.tool) ? rest.tool : {};
    put(t, 'annotations', tool.annotations);
    put(rest, 'tool', t);
  }
  return text(rest);
}

// Canonical JSON (sorted keys): the same content is the same text whichever path built it, so the
// event-ids digest of a copy does not depend on the member order of what was received.
const text = (rest: Obj): string =>
  Object.keys(rest).length === 0 ? '' : canonicalJson({ [REMAINDER_KEY]: rest });

/** Members (object keys) in a JSON text: its colons outside strings. */
function membersInText(s: string): number {
  let n = 0;
  // NOTE: a plain charCodeAt loop measured faster here than jumping with indexOf.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 58) n++;
    else if (c === 34) {
      // skip the string: to the next quote that is not escaped
      for (i++; i < s.length; i++) {
        const d = s.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
    }
  }
  return n;
}

function membersIn(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  let n = 0;
  if (Array.isArray(v)) for (const x of v) n += membersIn(x);
  else for (const k of Object.keys(v)) n += 1 + membersIn((v as Obj)[k]);
  return n;
}

/**
 * The `raw` column for a validated event `e` (the schema's output: unknown members stripped) and the
 * redacted JSON text it came from. When the text has no member `e` lacks (the same member count: the
 * schema only ever drops members, never adds any), the remainder follows from `e` alone: an integer
 * `error.code` (the column is a String), `tool.annotations` and empty `labels`; nothing is parsed. Otherwise the text
 * is parsed and compared with `base()`, the event the row's typed columns give back (`fromEventRow`).
 */
export function remainderOfReceived(received: string, e: object, base: () => Obj): string {
  const ev = e as Obj;
  if (membersInText(received) !== membersIn(ev)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(received);
    } catch {
      parsed = undefined; // a redaction that fell back to its text pass: what `e` holds is known
    }
    if (isObject(parsed)) return remainderOf(parsed, base());
  }
  const rest: Obj = {};
  const error = ev.error;
  if (isObject(error) && typeof error.code === 'number') rest.error = { code: error.code };
  const tool = ev.tool;
  if (isObject(tool) && tool.annotations !== undefined) rest.tool = { annotations: tool.annotations };
  // no label is stored as no labels: an explicit empty object is kept here
  if (isObject(ev.labels) && Object.keys(ev.labels).length === 0) rest.labels = {};
  return text(rest);
}

/** What the `raw` column holds: a remainder (migration 013 on), or the whole event (older rows). */
export type StoredRaw = { kind: 'remainder'; rest: Obj } | { kind: 'full'; event: Obj };

/**
 * Reads the `raw` column. Text that is not a JSON object (never written by toEventRow; a stored row
 * is not refused for it) adds nothing: the typed columns still give the whole v1 event.
 */
export function parseStoredRaw(raw: unknown): StoredRaw {
  const nothing: StoredRaw = { kind: 'remainder', rest: {} };
  if (typeof raw !== 'string' || raw === '') return nothing;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return nothing;
  }
  if (!isObject(v)) return nothing;
  const keys = Object.keys(v);
  if (keys.length === 1 && keys[0] === REMAINDER_KEY) {
    const rest = v[REMAINDER_KEY];
    return isObject(rest) ? { kind: 'remainder', rest } : nothing;
  }
  return { kind: 'full', event: v };
}

/**
 * The event as stored (redacted), from a stored row: its typed columns with the `raw` column merged
 * in, whichever form `raw` has. For a row written by toEventRow this equals the redacted event as
 * received, unknown fields included; where the typed columns hold more than the received event (a
 * label the history import adds), the stored columns show.
 */
export function reconstructEvent(row: Obj): Obj {
  const base = fromEventRow(row);
  const raw = parseStoredRaw(row.raw);
  return merge(base, raw.kind === 'remainder' ? raw.rest : raw.event);
}

/** A row's `raw` as a remainder: the same text for an older full copy as toEventRow writes today. */
export function remainderOfRow(row: Obj): string {
  const raw = parseStoredRaw(row.raw);
  if (raw.kind === 'remainder') return str(row.raw);
  return remainderOf(raw.event, fromEventRow(row));
}
