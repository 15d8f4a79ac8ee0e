import { z } from 'zod';
import { eventRulesHold, type AuditEventV1 } from './event.js';
import {
  MAX_ERROR_MESSAGE_LENGTH,
  MAX_LABEL_KEY_LENGTH,
  MAX_LABEL_VALUE_LENGTH,
  MAX_STRING_LENGTH,
  MAX_TOOL_TITLE_LENGTH,
} from './limits.js';

/**
 * parseEvent's compiled check: the fields of `eventFieldsOfJson` (event.ts) written out by hand for
 * a value that came from JSON.parse and passed the walk. It answers only "valid, and here is zod's
 * output" or "ask zod": anything it is not sure of (an IPv6 address, a null, a wrong type, a rule that
 * fails) returns undefined and the caller runs the zod schema, which also words the issues. So it may
 * only ever accept less than zod, never more, and its output must equal zod's (the differential test
 * parse.equivalence.test.ts and parse.compiled.test.ts hold it to both). zod walks this shape in
 * ~15 µs; this does it in ~2.
 */

type Obj = Record<string, unknown>;

// The patterns of event.ts and the ones zod itself uses for its formats.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NO_CONTROL_CHARS = /^[^\u0000-\u001f\u007f]*$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SHA256_HEX_PATTERN = /^[0-9a-f]{64}$/;
const TRACE_ID_PATTERN = /^(?!0{32}$)[0-9a-f]{32}$/;
const DATETIME_MS = z.core.regexes.datetime({ precision: 3 });
const IPV4 = z.core.regexes.ipv4;

const KINDS = new Set(['tool_call', 'resource_read', 'prompt_get', 'tool_list', 'session', 'auth']);
const SOURCE_TYPES = new Set(['gateway', 'sdk']);
const TRANSPORTS = new Set(['stdio', 'http']);
const OUTCOMES = new Set(['ok', 'error', 'denied', 'auth_failed']);
const AUTH_METHODS = new Set(['oauth', 'api_key', 'mtls', 'none']);
const AUTH_RESULTS = new Set(['success', 'failure']);
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const identifier = (v: unknown): v is string =>
  typeof v === 'string' && v.length >= 1 && v.length <= MAX_STRING_LENGTH && NO_CONTROL_CHARS.test(v);

const oneOf = (set: ReadonlySet<string>, v: unknown): v is string => typeof v === 'string' && set.has(v);

const count = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Copies the optional identifier `k` of `src` to `out`; false if present and not an identifier. */
function optIdentifier(src: Obj, out: Obj, k: string): boolean {
  const v = src[k];
  if (v === undefined) return true;
  if (!identifier(v)) return false;
  out[k] = v;
  return true;
}

function source(v: unknown): Obj | undefined {
  if (!isObj(v) || !oneOf(SOURCE_TYPES, v.type) || !identifier(v.id) || !identifier(v.version)) return;
  return { type: v.type, id: v.id, version: v.version };
}

function client(v: unknown): Obj | undefined {
  if (!isObj(v) || !identifier(v.id)) return;
  const out: Obj = { id: v.id };
  if (!optIdentifier(v, out, 'name') || !optIdentifier(v, out, 'user') || !optIdentifier(v, out, 'agent'))
    return;
  if (v.ip !== undefined) {
    // IPv6 takes zod's own check (a pattern plus a URL parse): rare enough to leave to it.
    if (typeof v.ip !== 'string' || !IPV4.test(v.ip)) return;
    out.ip = v.ip;
  }
  if (!optIdentifier(v, out, 'user_agent') || !optIdentifier(v, out, 'session_id')) return;
  return out;
}

function server(v: unknown): Obj | undefined {
  if (!isObj(v) || !identifier(v.name)) return;
  const out: Obj = { name: v.name };
  if (!optIdentifier(v, out, 'version') || !oneOf(TRANSPORTS, v.transport)) return;
  out.transport = v.transport;
  return out;
}

const HINTS = ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const;

function annotations(v: unknown): Obj | undefined {
  if (!isObj(v)) return;
  const out: Obj = {};
  if (v.title !== undefined) {
    const t = v.title;
    if (typeof t !== 'string' || t.length > MAX_TOOL_TITLE_LENGTH || !NO_CONTROL_CHARS.test(t)) return;
    out.title = t;
  }
  for (const h of HINTS) {
    if (v[h] === undefined) continue;
    if (typeof v[h] !== 'boolean') return;
    out[h] = v[h];
  }
  return out;
}

function tool(v: unknown): Obj | undefined {
  if (!isObj(v) || !identifier(v.name)) return;
  const out: Obj = { name: v.name };
  if (v.definition_hash !== undefined) {
    if (typeof v.definition_hash !== 'string' || !SHA256_HEX_PATTERN.test(v.definition_hash)) return;
    out.definition_hash = v.definition_hash;
  }
  if (v.annotations !== undefined) {
    const a = annotations(v.annotations);
    if (!a) return;
    out.annotations = a;
  }
  return out;
}

function auth(v: unknown): Obj | undefined {
  if (!isObj(v) || !oneOf(AUTH_METHODS, v.method) || !oneOf(AUTH_RESULTS, v.result)) return;
  const out: Obj = { method: v.method, result: v.result };
  return optIdentifier(v, out, 'reason') ? out : undefined;
}

function error(v: unknown): Obj | undefined {
  if (!isObj(v)) return;
  const code = v.code;
  if (!identifier(code) && !Number.isSafeInteger(code)) return;
  if (typeof v.message !== 'string' || v.message.length > MAX_ERROR_MESSAGE_LENGTH) return;
  return { code, message: v.message };
}

/** Own keys as zod's record sees them; the walk already refused forbidden keys. */
function args(v: unknown): Obj | undefined {
  if (!isObj(v)) return;
  const out: Obj = {};
  for (const k of Object.keys(v)) out[k] = v[k];
  return out;
}

function labels(v: unknown): Obj | undefined {
  if (!isObj(v)) return;
  const out: Obj = {};
  for (const k of Object.keys(v)) {
    const val = v[k];
    if (k.length < 1 || k.length > MAX_LABEL_KEY_LENGTH || !NO_CONTROL_CHARS.test(k)) return;
    if (typeof val !== 'string' || val.length > MAX_LABEL_VALUE_LENGTH || !NO_CONTROL_CHARS.test(val)) return;
    out[k] = val;
  }
  return out;
}

/** Sets `out[k]` to `check(v[k])` when present; false when present and not valid. */
function optional(src: Obj, out: Obj, k: string, check: (v: unknown) => Obj | undefined): boolean {
  const v = src[k];
  if (v === undefined) return true;
  const c = check(v);
  if (!c) return false;
  out[k] = c;
  return true;
}

/**
 * zod's output for `value` (schema_version already checked, the walk passed), or undefined when the
 * compiled check cannot vouch for it: then the caller asks zod.
 */
export function compiledEvent(e: Obj): AuditEventV1 | undefined {
  if (typeof e.event_id !== 'string' || !UUID_PATTERN.test(e.event_id)) return;
  if (typeof e.ts !== 'string' || !DATETIME_MS.test(e.ts)) return;
  if (!oneOf(KINDS, e.kind)) return;
  const src = source(e.source);
  const cli = client(e.client);
  const srv = server(e.server);
  if (!src || !cli || !srv || !identifier(e.method)) return;
  // Keys in the schema's order, as zod builds its output.
  const out: Obj = {
    schema_version: e.schema_version,
    event_id: e.event_id,
    ts: e.ts,
    kind: e.kind,
    source: src,
    client: cli,
    server: srv,
    method: e.method,
  };
  if (!optional(e, out, 'tool', tool)) return;
  if (!oneOf(OUTCOMES, e.outcome)) return;
  out.outcome = e.outcome;
  const status = e.http_status;
  if (status !== undefined) {
    if (!Number.isSafeInteger(status) || (status as number) < 100 || (status as number) > 599) return;
    out.http_status = status;
  }
  const rpc = e.rpc_error_code;
  if (rpc !== undefined) {
    if (!Number.isSafeInteger(rpc) || (rpc as number) < INT32_MIN || (rpc as number) > INT32_MAX) return;
    out.rpc_error_code = rpc;
  }
  if (e.tool_is_error !== undefined) {
    if (typeof e.tool_is_error !== 'boolean') return;
    out.tool_is_error = e.tool_is_error;
  }
  if (e.trace_id !== undefined) {
    if (typeof e.trace_id !== 'string' || !TRACE_ID_PATTERN.test(e.trace_id)) return;
    out.trace_id = e.trace_id;
  }
  if (!optional(e, out, 'auth', auth) || !optional(e, out, 'error', error)) return;
  if (!count(e.duration_ms) || e.duration_ms > 4_294_967_295) return;
  if (!count(e.request_bytes) || !count(e.response_bytes)) return;
  out.duration_ms = e.duration_ms;
  out.request_bytes = e.request_bytes;
  out.response_bytes = e.response_bytes;
  if (!optional(e, out, 'args', args)) return;
  if (e.response_digest !== undefined) {
    if (typeof e.response_digest !== 'string' || !SHA256_HEX_PATTERN.test(e.response_digest)) return;
    out.response_digest = e.response_digest;
  }
  if (!optional(e, out, 'labels', labels)) return;
  const event = out as AuditEventV1;
  return eventRulesHold(event) ? event : undefined;
}
