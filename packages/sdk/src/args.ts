import { FORBIDDEN_KEYS, MAX_ARGS_BYTES, MAX_ARGS_DEPTH, sha256Hex, utf8ByteLength } from '@mcp-audit/schema';

/** Default size above which one string (or a container past the depth cap) becomes its digest. */
export const DEFAULT_MAX_ARG_VALUE_BYTES = 2048;

/**
 * What a large value is replaced by: its SHA-256 (of the UTF-8 string, or of the value's JSON for
 * containers) and its size. Tools that receive file contents or documents are audited by digest,
 * so two calls with the same payload are still recognisable, while the log never holds the payload.
 */
export function digestMarker(json: string, bytes: number): string {
  return `[DIGEST:sha256:${sha256Hex(json)}:${bytes}B]`;
}

export interface CapResult {
  args: Record<string, unknown>;
  /** Values replaced by their digest. */
  capped: number;
}

/**
 * Bounds `args` (already redacted) to what the event contract accepts: strings longer than
 * `maxValueBytes`, containers nested near MAX_ARGS_DEPTH and, if the whole is still above
 * MAX_ARGS_BYTES, the largest top-level members are replaced by digest markers.
 */
export function capArgs(
  args: Record<string, unknown>,
  maxValueBytes = DEFAULT_MAX_ARG_VALUE_BYTES,
): CapResult {
  const state = { capped: 0 };
  const walked = walk(args, 1, maxValueBytes, state) as Record<string, unknown>;
  let json = JSON.stringify(walked);
  let total = utf8ByteLength(json);
  if (total <= MAX_ARGS_BYTES) return { args: walked, capped: state.capped };

  const sized = Object.keys(walked)
    .map((k) => {
      const j = JSON.stringify(walked[k]) ?? 'null';
      return { k, j, bytes: utf8ByteLength(j) };
    })
    .sort((a, b) => b.bytes - a.bytes);
  const out: Record<string, unknown> = { ...walked };
  for (const { k, j, bytes } of sized) {
    if (total <= MAX_ARGS_BYTES) break;
    const marker = digestMarker(j, bytes);
    out[k] = marker;
    state.capped++;
    total -= bytes - utf8ByteLength(JSON.stringify(marker));
  }
  json = JSON.stringify(out);
  if (utf8ByteLength(json) <= MAX_ARGS_BYTES) return { args: out, capped: state.capped };
  // Thousands of small members: keep only the digest of the whole.
  const whole = JSON.stringify(walked);
  return { args: { _truncated: digestMarker(whole, utf8ByteLength(whole)) }, capped: state.capped + 1 };
}

function walk(v: unknown, depth: number, maxValueBytes: number, state: { capped: number }): unknown {
  if (typeof v === 'string') {
    // Cheap bound first: a UTF-16 unit is at most 3 UTF-8 bytes.
    if (v.length * 3 <= maxValueBytes) return v;
    const bytes = utf8ByteLength(v);
    if (bytes <= maxValueBytes) return v;
    state.capped++;
    return digestMarker(v, bytes);
  }
  if (v === null || typeof v !== 'object') {
    // JSON-RPC params only hold JSON; anything else (a non-finite number) becomes null like JSON does.
    return typeof v === 'number' && !Number.isFinite(v) ? null : v;
  }
  if (depth >= MAX_ARGS_DEPTH - 1) {
    const j = JSON.stringify(v) ?? 'null';
    state.capped++;
    return digestMarker(j, utf8ByteLength(j));
  }
  if (Array.isArray(v)) return v.map((item) => walk(item, depth + 1, maxValueBytes, state));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const item = (v as Record<string, unknown>)[k];
    if (item === undefined) continue;
    // The contract refuses these keys anywhere (prototype pollution); a request that used one is
    // worth keeping, so the key is renamed rather than the event lost.
    const key = FORBIDDEN_KEYS.includes(k) ? `[key:${k}]` : k;
    out[key] = walk(item, depth + 1, maxValueBytes, state);
  }
  return out;
}
