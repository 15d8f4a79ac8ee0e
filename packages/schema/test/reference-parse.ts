/**
 * The parseEvent of before its fast path, kept as the oracle of the differential test
 * (parse.equivalence.test.ts): every input must get the same result from both. It uses the public
 * auditEventV1 (with the recursive check of `args`), the full walk and the duplicate-key scan.
 */
import type { z } from 'zod';
import {
  auditEventV1,
  findDuplicateKey,
  formatPath,
  FORBIDDEN_KEYS,
  MAX_CLOCK_SKEW_MS,
  MAX_EVENT_AGE_MS,
  MAX_EVENT_BYTES,
  MAX_EVENT_DEPTH,
  MAX_REPORTED_ISSUES,
  ROOT_PATH,
  SCHEMA_VERSION,
  utf8ByteLength,
  type ParseErrorCode,
  type ParseFailure,
  type ParseIssue,
  type ParseOptions,
  type ParseResult,
} from '../src/index.js';

type Segment = string | number;

const LONE_SURROGATE = /\p{Cs}/u;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

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

export function referenceParseEvent(
  input: string | Buffer | Uint8Array,
  opts: ParseOptions = {},
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

  // JSON.parse keeps the last of duplicate keys while other readers of the raw copy may keep the
  // first: refuse the ambiguity instead of storing two different stories about one event.
  const duplicate = findDuplicateKey(raw);
  if (duplicate)
    return fail('AUDIT_ERR_INVALID_EVENT', [{ path: formatPath(duplicate), message: 'duplicate key' }]);

  return check(value, raw, opts);
}

function tooLarge(bytes: number, atLeast: boolean): ParseFailure {
  return fail('AUDIT_ERR_TOO_LARGE', [
    {
      path: ROOT_PATH,
      message: `is ${atLeast ? 'at least ' : ''}${bytes} bytes; the limit is ${MAX_EVENT_BYTES}`,
    },
  ]);
}

function rootIssue(value: unknown): ParseIssue | undefined {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return undefined;
  return { path: ROOT_PATH, message: `must be a JSON object, got ${typeName(value)}` };
}

/** The checks after JSON.parse, on a value that came from JSON.parse. */
function check(value: unknown, raw: string, opts: ParseOptions): ParseResult {
  const notObject = rootIssue(value);
  if (notObject) return fail('AUDIT_ERR_INVALID_EVENT', [notObject]);
  const treeIssues = walk(value as object, false);
  if (treeIssues.length > 0) return fail('AUDIT_ERR_INVALID_EVENT', treeIssues);

  const version = (value as Record<string, unknown>).schema_version;
  if (version !== SCHEMA_VERSION) {
    const message =
      version === undefined
        ? `Required (expected ${SCHEMA_VERSION})`
        : `${JSON.stringify(version).slice(0, 40)} is not a supported version (expected ${SCHEMA_VERSION})`;
    return fail('AUDIT_ERR_UNKNOWN_SCHEMA_VERSION', [{ path: 'schema_version', message }]);
  }

  const parsed = auditEventV1.safeParse(value, { error: issueMessage });
  const issues: ParseIssue[] = parsed.success
    ? []
    : parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
  if (!issues.some((i) => i.path === 'ts')) {
    const clock = clockIssue((value as Record<string, unknown>).ts, opts.now);
    if (clock) issues.push(clock);
  }
  if (!parsed.success || issues.length > 0) return fail('AUDIT_ERR_INVALID_EVENT', issues);
  return { ok: true, event: parsed.data, raw };
}

function clockIssue(ts: unknown, nowOpt: number | undefined): ParseIssue | undefined {
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
  if (now - at > MAX_EVENT_AGE_MS) {
    return {
      path: 'ts',
      message: `is ${((now - at) / 86_400_000).toFixed(3)} days behind the receiver's clock; the limit is ${MAX_EVENT_AGE_MS / 86_400_000} days`,
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
