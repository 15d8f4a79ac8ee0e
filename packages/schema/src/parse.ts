import type { z } from 'zod';
import {
  auditEventV1,
  eventFieldsOfJson,
  eventRulesHold,
  SCHEMA_VERSION,
  type AuditEventV1,
} from './event.js';
import { utf8ByteLength } from './json.js';
import { compiledEvent } from './parse.compiled.js';
import {
  FORBIDDEN_KEYS,
  MAX_CLOCK_SKEW_MS,
  MAX_EVENT_AGE_MS,
  MAX_EVENT_BYTES,
  MAX_EVENT_DEPTH,
  MAX_REPORTED_ISSUES,
} from './limits.js';

export type ParseErrorCode =
  | 'AUDIT_ERR_TOO_LARGE'
  | 'AUDIT_ERR_MALFORMED_JSON'
  | 'AUDIT_ERR_UNKNOWN_SCHEMA_VERSION'
  | 'AUDIT_ERR_INVALID_EVENT';

/** `path` is `(root)` or a field path such as `client.id`, `args.items[2]`, `labels["a.b"]`. */
export interface ParseIssue {
  path: string;
  message: string;
}

export type ParseSuccess = { ok: true; event: AuditEventV1; raw: string };
export type ParseFailure = { ok: false; code: ParseErrorCode; reason: string; issues: ParseIssue[] };
export type ParseResult = ParseSuccess | ParseFailure;

export interface ParseOptions {
  /** The receiver's clock in epoch ms, for the bounds on `ts`. Defaults to Date.now(). */
  now?: number;
  /**
   * How far behind the clock `ts` may be (default MAX_EVENT_AGE_MS, 30 days: the live path). Only the
   * admin-only history import passes Infinity; the bound on the future stays.
   */
  maxAgeMs?: number;
}

type Segment = string | number;

export const ROOT_PATH = '(root)';
const PLAIN_KEY = /^[A-Za-z_$][\w$-]*$/;
const MAX_KEY_IN_PATH = 64;
// Lone surrogates cannot be encoded as UTF-8: stored, they would come back as U+FFFD.
const LONE_SURROGATE = /\p{Cs}/u;
/**
 * What the fast path of parseEvent cannot vouch for: escapes of a NUL, a surrogate or a colon, and
 * lone surrogates (which only a string input can hold). See `colonsIfClean`.
 */
const NOT_FOR_FAST_PATH = /\\u(?:0000|[dD][89a-fA-F]|003[aA])|\p{Cs}/u;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Renders a path for humans and logs; keys are JSON-escaped and shortened, so no input reaches it raw. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = String(seg);
      if (PLAIN_KEY.test(key) && key.length <= MAX_KEY_IN_PATH) out += out === '' ? key : `.${key}`;
      else {
        const shown = key.length > MAX_KEY_IN_PATH ? `${key.slice(0, MAX_KEY_IN_PATH)}…` : key;
        out += `[${JSON.stringify(shown)}]`;
      }
    }
  }
  return out === '' ? ROOT_PATH : out;
}

function fail(code: ParseErrorCode, issues: ParseIssue[]): ParseFailure {
  const shown = issues.slice(0, MAX_REPORTED_ISSUES);
  let reason = shown.map((i) => `${i.path}: ${i.message}`).join('; ');
  if (issues.length > shown.length) reason += `; and ${issues.length - shown.length} more`;
  return { ok: false, code, reason, issues: shown };
}

const withArticle = (noun: string): string => `${/^[aeiou]/.test(noun) ? 'an' : 'a'} ${noun}`;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/**
 * Parses one serialized event: size, UTF-8, JSON syntax, duplicate and forbidden keys, nesting,
 * NUL bytes, schema version, then the zod schema and the clock bounds, in that order.
 * On success `event` holds only known fields; `raw` is the input text, unknown fields included.
 */
export function parseEvent(input: string | Buffer | Uint8Array, opts: ParseOptions = {}): ParseResult {
  return parseText(input, opts);
}

/** A success of parseEventDocument: also the document `raw` parses to, the event's values among it. */
export type ParseDocumentSuccess = ParseSuccess & { document: Record<string, unknown> };

/**
 * parseEvent, plus on success `document`: JSON.parse(raw), unknown fields included, which the event
 * was validated from (every value of `event` is the document's at the same path). The ingester hands
 * it to the redactor, so the raw text is not parsed a second time. Neither may be modified.
 */
export function parseEventDocument(
  input: string | Buffer | Uint8Array,
  opts: ParseOptions = {},
): ParseDocumentSuccess | ParseFailure {
  let document: unknown;
  const result = parseText(input, opts, (d) => (document = d));
  return result.ok ? { ...result, document: document as Record<string, unknown> } : result;
}

function parseText(
  input: string | Buffer | Uint8Array,
  opts: ParseOptions,
  keep?: (document: unknown) => void,
): ParseResult {
  let raw: string;
  if (typeof input === 'string') {
    // Every UTF-16 unit is at least one UTF-8 byte, so a long string is rejected before it is measured.
    const bytes = input.length > MAX_EVENT_BYTES ? input.length : utf8ByteLength(input);
    if (bytes > MAX_EVENT_BYTES) return tooLarge(bytes, input.length > MAX_EVENT_BYTES);
    raw = input;
  } else {
    if (input.byteLength > MAX_EVENT_BYTES) return tooLarge(input.byteLength, false);
    try {
      raw = utf8.decode(input);
    } catch {
      return fail('AUDIT_ERR_MALFORMED_JSON', [{ path: ROOT_PATH, message: 'is not valid UTF-8' }]);
    }
  }

  if (raw.charCodeAt(0) === 0xfeff) {
    return fail('AUDIT_ERR_MALFORMED_JSON', [{ path: ROOT_PATH, message: 'starts with a byte order mark' }]);
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    // V8 quotes a short excerpt of the input; escape it so control characters never reach logs.
    const detail = JSON.stringify((err as Error).message)
      .slice(1, -1)
      .slice(0, 200);
    return fail('AUDIT_ERR_MALFORMED_JSON', [{ path: ROOT_PATH, message: `is not valid JSON: ${detail}` }]);
  }
  keep?.(value);

  // Fast path: nothing for walk() to report, and no key JSON.parse merged. Anything else takes the
  // full checks below, in their order. (Decoded bytes hold no lone surrogate, and text without a
  // backslash no escape, so the regex can be skipped.)
  if (
    isPlainObject(value) &&
    ((typeof input !== 'string' && !raw.includes('\\')) || !NOT_FOR_FAST_PATH.test(raw)) &&
    colonsIfClean(value, 1) === colons(raw)
  ) {
    return checkSchema(value, raw, opts);
  }

  // JSON.parse keeps the last of duplicate keys while other readers of the raw copy may keep the
  // first: refuse the ambiguity instead of storing two different stories about one event.
  const duplicate = findDuplicateKey(raw);
  if (duplicate)
    return fail('AUDIT_ERR_INVALID_EVENT', [{ path: formatPath(duplicate), message: 'duplicate key' }]);

  return check(value, raw, opts);
}

/**
 * Validates an event that is already a JavaScript value (for example parsed by an HTTP framework).
 * Applies every check of parseEvent that does not need the original bytes, and also refuses values
 * JSON cannot carry (functions, bigints, non-finite numbers, class instances). `raw` on success is
 * JSON.stringify(value), so unknown fields are kept there as with parseEvent.
 */
export function validateEvent(value: unknown, opts: ParseOptions = {}): ParseResult {
  const notObject = rootIssue(value);
  if (notObject) return fail('AUDIT_ERR_INVALID_EVENT', [notObject]);
  const issues = walk(value as object, true);
  if (issues.length > 0) return fail('AUDIT_ERR_INVALID_EVENT', issues);
  const raw = JSON.stringify(value);
  const bytes = utf8ByteLength(raw);
  if (bytes > MAX_EVENT_BYTES) return tooLarge(bytes, false);
  // Validate a snapshot, not the live object: getters cannot change what was checked, and the
  // result is exactly what parseEvent(raw) returns (undefined members gone).
  return check(JSON.parse(raw), raw, opts);
}

function tooLarge(bytes: number, atLeast: boolean): ParseFailure {
  return fail('AUDIT_ERR_TOO_LARGE', [
    {
      path: ROOT_PATH,
      message: `is ${atLeast ? 'at least ' : ''}${bytes} bytes; the limit is ${MAX_EVENT_BYTES}`,
    },
  ]);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rootIssue(value: unknown): ParseIssue | undefined {
  if (isPlainObject(value)) return undefined;
  return { path: ROOT_PATH, message: `must be a JSON object, got ${typeName(value)}` };
}

/** The checks after JSON.parse, on a value that came from JSON.parse. */
function check(value: unknown, raw: string, opts: ParseOptions): ParseResult {
  const notObject = rootIssue(value);
  if (notObject) return fail('AUDIT_ERR_INVALID_EVENT', [notObject]);
  const treeIssues = walk(value as object, false);
  if (treeIssues.length > 0) return fail('AUDIT_ERR_INVALID_EVENT', treeIssues);

  return checkSchema(value as Record<string, unknown>, raw, opts);
}

/** The checks after the walk: schema version, the zod schema, the clock bounds. */
function checkSchema(value: Record<string, unknown>, raw: string, opts: ParseOptions): ParseResult {
  const version = value.schema_version;
  if (version !== SCHEMA_VERSION) {
    const message =
      version === undefined
        ? `Required (expected ${SCHEMA_VERSION})`
        : `${JSON.stringify(version).slice(0, 40)} is not a supported version (expected ${SCHEMA_VERSION})`;
    return fail('AUDIT_ERR_UNKNOWN_SCHEMA_VERSION', [{ path: 'schema_version', message }]);
  }

  // A valid event passes the compiled check (parse.compiled.ts), else zod's fast path; anything
  // else gets the full schema, whose issues are reported. (An error map only words issues, and
  // parsing without one is faster.)
  const compiled = compiledEvent(value);
  if (compiled) {
    const clock = clockIssue(value.ts, opts.now, opts.maxAgeMs ?? MAX_EVENT_AGE_MS);
    return clock ? fail('AUDIT_ERR_INVALID_EVENT', [clock]) : { ok: true, event: compiled, raw };
  }
  const fast = eventFieldsOfJson.safeParse(value);
  const parsed =
    fast.success && eventRulesHold(fast.data)
      ? { success: true as const, data: fast.data as AuditEventV1 }
      : auditEventV1.safeParse(value, { error: issueMessage });
  const issues: ParseIssue[] = parsed.success
    ? []
    : parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
  if (!issues.some((i) => i.path === 'ts')) {
    const clock = clockIssue(value.ts, opts.now, opts.maxAgeMs ?? MAX_EVENT_AGE_MS);
    if (clock) issues.push(clock);
  }
  if (!parsed.success || issues.length > 0) return fail('AUDIT_ERR_INVALID_EVENT', issues);
  return { ok: true, event: parsed.data, raw };
}

function clockIssue(ts: unknown, nowOpt: number | undefined, maxAgeMs: number): ParseIssue | undefined {
  if (typeof ts !== 'string') return undefined;
  const at = Date.parse(ts);
  if (!Number.isFinite(at)) return undefined;
  const now = nowOpt !== undefined && Number.isFinite(nowOpt) ? nowOpt : Date.now();
  if (at - now > MAX_CLOCK_SKEW_MS) {
    return {
      path: 'ts',
      message: `is ${(at - now) / 1000}s ahead of the receiver's clock; the limit is ${MAX_CLOCK_SKEW_MS / 1000}s`,
    };
  }
  if (now - at > maxAgeMs) {
    return {
      path: 'ts',
      message: `is ${((now - at) / 86_400_000).toFixed(3)} days behind the receiver's clock; the limit is ${maxAgeMs / 86_400_000} days`,
    };
  }
  return undefined;
}

/** Messages for zod issues whose schema sets none: short, and never quoting the input. */
function issueMessage(iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'Required';
      if (iss.expected === 'int' && typeof iss.input === 'number') return 'must be an integer';
      return `must be ${withArticle(iss.expected === 'int' ? 'integer' : iss.expected === 'record' ? 'object' : iss.expected)}, got ${typeName(iss.input)}`;
    case 'invalid_union':
      return iss.input === undefined ? 'Required' : undefined;
    case 'invalid_value':
      return iss.values.length === 1
        ? `must be ${JSON.stringify(iss.values[0])}`
        : `must be one of ${iss.values.map((v) => String(v)).join(', ')}`;
    case 'too_small':
      if (iss.origin === 'number' || iss.origin === 'int') return `must be >= ${String(iss.minimum)}`;
      return undefined;
    case 'too_big':
      if (iss.origin === 'number' || iss.origin === 'int') return `must be <= ${String(iss.maximum)}`;
      return undefined;
    case 'invalid_key':
      return iss.issues[0]?.message ?? 'invalid key';
    default:
      return undefined;
  }
}

interface Node {
  value: unknown;
  depth: number;
  parent: Node | null;
  key: Segment;
}

function pathOf(node: Node, extra?: Segment): string {
  const segs: Segment[] = extra === undefined ? [] : [extra];
  for (let n: Node | null = node; n && n.parent; n = n.parent) segs.push(n.key);
  return formatPath(segs.reverse());
}

function stringProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'must not contain NUL bytes';
  if (LONE_SURROGATE.test(s)) return 'must be valid Unicode (lone surrogate)';
  return undefined;
}

/**
 * One iterative pass over the whole document (so hostile nesting cannot exhaust the stack) for
 * the rules that hold everywhere, unknown fields included: forbidden keys, nesting depth, NUL
 * bytes and lone surrogates. `strict` also refuses values JSON cannot carry.
 */
function walk(root: object, strict: boolean): ParseIssue[] {
  const issues: ParseIssue[] = [];
  const stack: Node[] = [{ value: root, depth: 1, parent: null, key: '' }];
  // Collect a few beyond what is reported, so the "and N more" count is honest for small floods.
  const cap = MAX_REPORTED_ISSUES * 5;
  while (stack.length > 0 && issues.length < cap) {
    const node = stack.pop()!;
    const v = node.value;
    if (typeof v === 'string') {
      const problem = stringProblem(v);
      if (problem) issues.push({ path: pathOf(node), message: problem });
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) issues.push({ path: pathOf(node), message: 'must be a finite number' });
    } else if (typeof v === 'boolean' || v === null) {
      continue;
    } else if (typeof v === 'object') {
      if (node.depth > MAX_EVENT_DEPTH) {
        // Levels count from a top-level field (args itself is level 1), hence the - 1.
        issues.push({
          path: pathOf(node),
          message: `is nested more than ${MAX_EVENT_DEPTH - 1} levels deep`,
        });
        continue;
      }
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) {
          stack.push({ value: v[i], depth: node.depth + 1, parent: node, key: i });
        }
        continue;
      }
      if (strict) {
        const proto = Object.getPrototypeOf(v) as unknown;
        if (proto !== Object.prototype && proto !== null) {
          issues.push({ path: pathOf(node), message: 'must be a plain JSON object' });
          continue;
        }
      }
      const keys = Object.keys(v);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        if (FORBIDDEN_KEYS.includes(key)) {
          issues.push({ path: pathOf(node, key), message: 'forbidden key (prototype pollution)' });
          continue;
        }
        const problem = stringProblem(key);
        if (problem) {
          issues.push({ path: pathOf(node, key), message: `key ${problem}` });
          continue;
        }
        const child = (v as Record<string, unknown>)[key];
        // JSON.stringify drops undefined members; treat them as absent.
        if (child !== undefined) stack.push({ value: child, depth: node.depth + 1, parent: node, key });
      }
    } else {
      // Only reachable from validateEvent: functions, bigints, symbols, undefined array items.
      issues.push({ path: pathOf(node), message: `is not a JSON value (${typeof v})` });
    }
  }
  return issues;
}

/**
 * Counts the colons that `value`, parsed from `text`, accounts for: one per member, and those inside
 * its keys and strings. Every colon of valid JSON text is one or the other, and without `\u003a`
 * escapes a string holds exactly the colons of its token, so the count falls short of the text's
 * only when JSON.parse dropped a duplicate member. Returns -1 if walk() would report anything:
 * a forbidden key, too deep a nesting or a non-finite number (NUL bytes and lone surrogates, too,
 * need escapes or a string input, which the caller rules out).
 */
function colonsIfClean(value: object, depth: number): number {
  if (depth > MAX_EVENT_DEPTH) return -1;
  let count = 0;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const n = childColons((value as unknown[])[i], depth);
      if (n < 0) return -1;
      count += n;
    }
    return count;
  }
  // Own keys only, as walk() sees them: counting an inherited one could make up for a merged duplicate.
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.includes(key)) return -1;
    const n = childColons((value as Record<string, unknown>)[key], depth);
    if (n < 0) return -1;
    count += 1 + colons(key) + n;
  }
  return count;
}

function childColons(child: unknown, depth: number): number {
  if (typeof child === 'string') return colons(child);
  if (typeof child === 'object' && child !== null) return colonsIfClean(child, depth + 1);
  if (typeof child === 'number' && !Number.isFinite(child)) return -1;
  return 0;
}

function colons(s: string): number {
  let n = 0;
  for (let i = s.indexOf(':'); i !== -1; i = s.indexOf(':', i + 1)) n++;
  return n;
}

/**
 * Finds the first key that repeats within one object of `text`, which must be valid JSON.
 * Returns its path, or null. One linear scan; strings are skipped with indexOf.
 */
export function findDuplicateKey(text: string): Segment[] | null {
  interface Frame {
    keys: Set<string> | null;
    expectKey: boolean;
    key: Segment;
  }
  const stack: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = text.indexOf('"', i + 1);
      for (;;) {
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 0x5c /* \ */) backslashes++;
        if (backslashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      const top = stack[stack.length - 1];
      if (top && top.keys && top.expectKey) {
        const token = text.slice(i + 1, end);
        const key = token.includes('\\') ? (JSON.parse(`"${token}"`) as string) : token;
        if (top.keys.has(key)) return [...stack.slice(0, -1).map((f) => f.key), key];
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      stack.push({ keys: new Set(), expectKey: true, key: '' });
    } else if (c === 0x5b /* [ */) {
      stack.push({ keys: null, expectKey: false, key: 0 });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
      else if (top) top.key = (top.key as number) + 1;
    }
  }
  return null;
}
