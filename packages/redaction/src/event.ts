import type { RedactOptions, Redaction, Redactor } from './redact.js';
import { bindRedactor, Engine, Tally } from './redact.js';

type FieldRule = 'text' | { readonly [field: string]: 'text' };

/**
 * Envelope fields of the event (schema version 1) whose names must not trigger key-name
 * redaction: `auth` is the authentication outcome and `client.session_id` the MCP session, not
 * credentials. Their strings are still scanned for secret patterns. Everything else — `args`,
 * `labels`, `error` extras and any unknown field kept in the raw copy — gets the full rules.
 */
const ENVELOPE: { readonly [field: string]: FieldRule } = {
  schema_version: 'text',
  event_id: 'text',
  ts: 'text',
  kind: 'text',
  method: 'text',
  outcome: 'text',
  http_status: 'text',
  rpc_error_code: 'text',
  tool_is_error: 'text',
  trace_id: 'text',
  duration_ms: 'text',
  request_bytes: 'text',
  response_bytes: 'text',
  response_digest: 'text',
  source: { type: 'text', id: 'text', version: 'text' },
  client: {
    id: 'text',
    name: 'text',
    user: 'text',
    agent: 'text',
    ip: 'text',
    user_agent: 'text',
    session_id: 'text',
  },
  server: { name: 'text', version: 'text', transport: 'text' },
  tool: { name: 'text', definition_hash: 'text' },
  auth: { method: 'text', result: 'text', reason: 'text' },
  error: { code: 'text', message: 'text' },
};

export interface EventRedaction<E> extends Redaction<E> {
  /** The event with `args`, `error.message`, `labels`, … redacted. */
  event: E;
  /** The stored raw copy, redacted the same way (byte-identical when nothing was found). */
  raw: string;
}

export interface EventRedactor extends Redactor {
  /**
   * Redacts an audit event and its raw JSON text (which may carry fields the schema does not
   * know). Without `raw`, the raw copy is the redacted event serialised.
   *
   * `document`, when given, is `JSON.parse(raw)` and `event` was validated from it (parseEvent: every
   * value of the event is the document's at the same path). Then one pass over the document without
   * copying decides whether anything would be replaced; when nothing would, the event and the raw text
   * are returned as they are (the usual case), else both go through the full passes below.
   */
  redactEvent<E extends object>(event: E, raw?: string, document?: unknown): EventRedaction<E>;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function walkObject(
  engine: Engine,
  obj: Record<string, unknown>,
  rules: { readonly [field: string]: FieldRule | undefined },
  depth: number,
  tally: Tally,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(obj)) {
    const rule = Object.hasOwn(rules, k) ? rules[k] : undefined;
    const v = obj[k];
    if (rule === 'text') {
      out[k] = engine.walk(v, depth + 1, tally, false);
    } else if (rule !== undefined && isPlainObject(v) && depth + 1 < engine.maxDepth) {
      out[k] = walkObject(engine, v, rule, depth + 1, tally);
    } else {
      // Unknown fields (and known ones of an unexpected shape) get the full rules, name included.
      engine.entry(out, k, v, depth, tally);
    }
  }
  return out;
}

/** `walkObject` replaces nothing (see Engine.clean). */
function cleanObject(
  engine: Engine,
  obj: Record<string, unknown>,
  rules: { readonly [field: string]: FieldRule | undefined },
  depth: number,
): boolean {
  for (const k of Object.keys(obj)) {
    const rule = Object.hasOwn(rules, k) ? rules[k] : undefined;
    const v = obj[k];
    if (rule === 'text') {
      if (!engine.clean(v, depth + 1, false)) return false;
    } else if (rule !== undefined && isPlainObject(v) && depth + 1 < engine.maxDepth) {
      if (!cleanObject(engine, v, rule, depth + 1)) return false;
    } else if (!engine.cleanEntry(k, v, depth)) return false;
  }
  return true;
}

function redactDocument(engine: Engine, doc: unknown, tally: Tally): unknown {
  return isPlainObject(doc) ? walkObject(engine, doc, ENVELOPE, 0, tally) : engine.walk(doc, 0, tally);
}

/**
 * True when every member and item of `raw` is also in `event` at the same path, and every other
 * value equals the one in `event`: then the structured pass over `raw` applies the same rules to
 * the same values as the pass that produced `event`.
 */
function within(raw: unknown, event: unknown, depth: number, maxDepth: number): boolean {
  if (raw === event) return true;
  if (typeof raw !== 'object' || raw === null || typeof event !== 'object' || event === null) return false;
  // Deep containers get a marker, which counts as a redaction: leave them to the full pass.
  if (depth >= maxDepth) return false;
  if (Array.isArray(raw)) {
    if (!Array.isArray(event) || raw.length !== event.length) return false;
    for (let i = 0; i < raw.length; i++) {
      if (!within(raw[i], (event as unknown[])[i], depth + 1, maxDepth)) return false;
    }
    return true;
  }
  if (Array.isArray(event)) return false;
  // for-in also visits enumerable inherited keys (a polluted Object.prototype): not own in
  // `event`, they only send the raw copy down the full pass.
  for (const k in raw) {
    if (
      !Object.hasOwn(event, k) ||
      !within((raw as Record<string, unknown>)[k], (event as Record<string, unknown>)[k], depth + 1, maxDepth)
    ) {
      return false;
    }
  }
  return true;
}

/**
 * The raw copy, redacted. `cleanEvent` is the output of the event's pass when that pass replaced
 * nothing (its output, not the event: it is what the pass saw, toJSON and getters already read).
 */
function redactRaw(engine: Engine, raw: string, tally: Tally, cleanEvent: unknown): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return engine.text(raw, tally);
  }
  // The usual case: the raw copy holds nothing the clean event does not, so the same rules over
  // the same values replace nothing.
  if (cleanEvent !== undefined && within(parsed, cleanEvent, 0, engine.maxDepth)) return raw;
  try {
    const redacted = redactDocument(engine, parsed, tally);
    return tally.redactions === 0 ? raw : JSON.stringify(redacted);
  } catch {
    // Never hand back the original when the structured pass failed: fall back to text.
    const fallback = new Tally();
    const text = engine.text(raw, fallback);
    tally.redactions += fallback.redactions;
    for (const k of fallback.kinds) tally.kinds.add(k);
    return text;
  }
}

/** `createRedactor` plus `redactEvent`: what the collector and the ingester hold. */
export function createRedactor(opts: RedactOptions = {}): EventRedactor {
  const engine = new Engine(opts);
  return {
    ...bindRedactor(engine),
    redactEvent<E extends object>(event: E, raw?: string, document?: unknown): EventRedaction<E> {
      // The event holds a subset of the document's members under the same rules: a clean document
      // means a clean event.
      if (typeof raw === 'string' && isPlainObject(document) && cleanObject(engine, document, ENVELOPE, 0)) {
        return { value: event, redactions: 0, kinds: [], event, raw };
      }
      const eventTally = new Tally();
      const redactedEvent = redactDocument(engine, event, eventTally) as E;
      let rawOut: string;
      let tally = eventTally;
      if (typeof raw === 'string') {
        tally = new Tally();
        rawOut = redactRaw(engine, raw, tally, eventTally.redactions === 0 ? redactedEvent : undefined);
        for (const k of eventTally.kinds) tally.kinds.add(k);
      } else {
        rawOut = JSON.stringify(redactedEvent) ?? 'null';
      }
      return { ...tally.result(redactedEvent), event: redactedEvent, raw: rawOut };
    },
  };
}

/** Alias used by the services' wiring. */
export const createEventRedactor = createRedactor;
