import { createHash } from 'node:crypto';
import { redactString, type Redactor } from '@mcp-audit/redaction';
import {
  MAX_STRING_LENGTH,
  MAX_TOOL_TITLE_LENGTH,
  toolAnnotationsOf,
  type ToolAnnotations,
} from '@mcp-audit/schema';

// NOTE: the event contract refuses lone surrogates and NUL in every string, C0 controls and DEL in
// identifiers; one such character anywhere makes the whole event invalid (counted, not audited),
// so client- and server-supplied text is made acceptable here rather than trusted. The gateway and
// the wrap both use these, so the same request gets the same event from either.
const LONE_SURROGATE = /\p{Cs}/u;
const LONE_SURROGATES = /\p{Cs}/gu;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROLS = /[\u0000-\u001f\u007f]/g;

/** What identifiers are redacted with before they are cut: share the emitter's, so fingerprints match. */
export type TextRedactor = Pick<Redactor, 'redactString'>;
export const defaultTextRedactor: TextRedactor = { redactString: (s) => redactString(s) };

/** `s` cut to at most `max` UTF-16 units, never between the halves of a surrogate pair. */
export function cutText(s: string, max: number): string {
  if (s.length <= max) return s;
  const end = max > 0 && /[\ud800-\udbff]/.test(s[max - 1]!) ? max - 1 : max;
  return s.slice(0, end);
}

/** Free text (error messages): NUL and lone surrogates become U+FFFD, the rest is kept. */
export function wellFormedText(s: string, max?: number): string {
  const t = s.replaceAll('\u0000', '\ufffd').replace(LONE_SURROGATES, '\ufffd');
  return max === undefined ? t : cutText(t, max);
}

/**
 * A JSON value (tool arguments) with NUL and lone surrogates replaced in every string and key,
 * the same object when there were none. Below `maxDepth` the emitter replaces containers by a
 * marker anyway (redaction's default depth), so the walk stops there.
 */
export function wellFormedValue<T>(v: T, maxDepth = 64): T {
  return walkWellFormed(v, 0, maxDepth) as T;
}

function walkWellFormed(v: unknown, depth: number, maxDepth: number): unknown {
  if (typeof v === 'string') return v.includes('\u0000') || LONE_SURROGATE.test(v) ? wellFormedText(v) : v;
  if (typeof v !== 'object' || v === null || depth >= maxDepth) return v;
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const w = walkWellFormed(v[i], depth + 1, maxDepth);
      if (w !== v[i]) (out ??= v.slice())[i] = w;
    }
    return out ?? v;
  }
  const src = v as Record<string, unknown>;
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(src)) {
    const key = walkWellFormed(k, depth, maxDepth) as string;
    const w = walkWellFormed(src[k], depth + 1, maxDepth);
    if (key !== k || w !== src[k]) changed = true;
    // NOTE: defineProperty, so a `__proto__` key stays a key (the emitter refuses it by name later).
    Object.defineProperty(out, key, { value: w, enumerable: true, writable: true, configurable: true });
  }
  return changed ? out : v;
}

/** Free-form identifiers from clients (user agents, client names) end up in the event: keep them sane. */
export function cleanText(s: unknown, max = 256): string | undefined {
  if (typeof s !== 'string') return undefined;
  const t = s.replace(CONTROLS, ' ').replace(LONE_SURROGATES, '\ufffd').trim();
  return t === '' ? undefined : cutText(t, max);
}

/**
 * Longest method or tool name an event carries: the schema's limit less room for one redaction
 * marker (at most 60 characters) that the emitter's own pass could still find where the text was cut.
 */
export const MAX_EVENT_IDENTIFIER = MAX_STRING_LENGTH - 64;
const TRUNCATED = '…[truncated]';

/**
 * A client-chosen identifier (JSON-RPC method, tool name) as an event can carry it, and what had
 * to change: `empty`, `invalid_unicode` (lone surrogates → U+FFFD), `control_characters` (escaped
 * as `\uXXXX`), `too_long` (cut, ending in `…[truncated]`). Redacted before it is cut, so the
 * emitter's second pass cannot lengthen it past the schema's limit (its markers are left alone).
 */
export function eventIdentifier(raw: string, redactor: TextRedactor): { value: string; problems: string[] } {
  const problems: string[] = [];
  if (raw === '') return { value: '(empty)', problems: ['empty'] };
  let s = raw;
  if (LONE_SURROGATE.test(s)) {
    problems.push('invalid_unicode');
    s = s.replace(LONE_SURROGATES, '\ufffd');
  }
  if (CONTROL.test(s)) {
    problems.push('control_characters');
    s = s.replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }
  s = redactor.redactString(s).value;
  if (s.length > MAX_EVENT_IDENTIFIER) {
    problems.push('too_long');
    s = cutText(s, MAX_EVENT_IDENTIFIER - TRUNCATED.length) + TRUNCATED;
  }
  return { value: s, problems };
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/**
 * `method` of a request's event. One the event cannot carry verbatim is sanitized
 * (eventIdentifier) and labelled `invalid_method` with what was wrong, plus `method_sha256` and
 * `method_length` of the original, so the request is still audited and can be matched against
 * the exact bytes elsewhere.
 */
export function eventMethod(
  method: string,
  redactor: TextRedactor,
): { method: string; labels?: Record<string, string> | undefined } {
  const m = eventIdentifier(method, redactor);
  if (m.problems.length === 0) return { method: m.value };
  return {
    method: m.value,
    labels: {
      invalid_method: m.problems.join(','),
      method_sha256: sha256(method),
      method_length: String(method.length),
    },
  };
}

/**
 * `method`, `tool.name` and labels of a request's event: the method as eventMethod makes it, the
 * tool name likewise (`invalid_tool_name`, `tool_name_sha256`, `tool_name_length`), and a
 * `tools/call` without a string tool name gets `tool.name: (missing)`.
 */
export function requestNames(
  method: string,
  tool: string | undefined,
  redactor: TextRedactor,
): { method: string; tool?: string | undefined; labels?: Record<string, string> | undefined } {
  const m = eventMethod(method, redactor);
  const labels: Record<string, string> = { ...m.labels };
  let name: string | undefined;
  if (tool !== undefined) {
    const t = eventIdentifier(tool, redactor);
    name = t.value;
    if (t.problems.length > 0) {
      labels.invalid_tool_name = t.problems.join(',');
      labels.tool_name_sha256 = sha256(tool);
      labels.tool_name_length = String(tool.length);
    }
  } else if (method === 'tools/call') {
    name = '(missing)';
    labels.invalid_tool_name = 'missing';
  }
  return {
    method: m.method,
    ...(name !== undefined ? { tool: name } : {}),
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
  };
}

/**
 * `tool.annotations` of an event from a listed tool's `annotations` member (the server's, untrusted):
 * the typed MCP hints, and the title redacted before it is cut to the contract's limit (the emitter's
 * second pass leaves its markers alone). `undefined` for an unannotated tool: it stays unclassified.
 * The gateway and the wrap both use it, so a listing gets the same events from either.
 */
export function eventAnnotations(raw: unknown, redactor: TextRedactor): ToolAnnotations | undefined {
  const a = toolAnnotationsOf(raw);
  if (a?.title !== undefined) a.title = cutText(redactor.redactString(a.title).value, MAX_TOOL_TITLE_LENGTH);
  return a;
}
