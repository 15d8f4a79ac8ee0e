import { eventKeyFor, parseEvent, type AuditEventV1 } from '@mcp-audit/schema';
import { DLQ_FORMAT, DLQ_HEADERS, type Kafka, type Opener, type OutgoingMessage } from '@mcp-audit/kafka';
import type { EventRedactor } from '@mcp-audit/redaction';

/** One message of the dead-letter topic as read back. */
export interface DeadLetterRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | undefined>;
}

export interface LetterSummary {
  /** `<partition>:<offset>`, what `dlq replay` takes. */
  id: string;
  code: string;
  reason: string;
  at: string;
  source: string;
  /** Key id of the sealed original, if one was kept. */
  keyId?: string;
  /** Written before dead letters were redacted: the value is the original in clear. */
  legacy: boolean;
  /** Redacted, whatever the format. */
  preview: string;
}

const header = (r: DeadLetterRecord, name: string) => r.headers[name]?.toString('utf8') ?? '';

export const letterId = (r: { partition: number; offset: string }) => `${r.partition}:${r.offset}`;

export function summarize(r: DeadLetterRecord, redactor: EventRedactor, previewChars = 160): LetterSummary {
  const legacy = header(r, DLQ_HEADERS.format) !== DLQ_FORMAT;
  const value = r.value?.toString('utf8') ?? '';
  // A legacy letter's value is the original in clear: it is redacted here before it is shown.
  const shown = legacy ? redactor.redactString(value).value : value;
  const keyId = header(r, DLQ_HEADERS.keyId);
  return {
    id: letterId(r),
    code: header(r, DLQ_HEADERS.code),
    reason: legacy
      ? redactor.redactString(header(r, DLQ_HEADERS.reason)).value
      : header(r, DLQ_HEADERS.reason),
    at: header(r, DLQ_HEADERS.at),
    source: header(r, DLQ_HEADERS.topic),
    ...(keyId && r.headers[DLQ_HEADERS.sealed] ? { keyId } : {}),
    legacy,
    preview: shown.length > previewChars ? `${shown.slice(0, previewChars)}…` : shown,
  };
}

/** A change to the original before it is sent back: `--set a.b=<json or text>`, `--unset a.b`, `--patch file`. */
export type Fixup =
  | { op: 'set'; path: string[]; value: unknown }
  | { op: 'unset'; path: string[] }
  | { op: 'merge'; patch: unknown };

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

function splitPath(p: string): string[] {
  const parts = p.split('.');
  if (parts.some((x) => x === '' || FORBIDDEN.has(x))) throw new Error(`invalid path "${p}"`);
  return parts;
}

/** `duration_ms=0` → set duration_ms to 0; a value that is not JSON is a string (`client.id=acme`). */
export function parseSet(arg: string): Fixup {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new Error(`--set wants path=value, got "${arg}"`);
  const raw = arg.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  return { op: 'set', path: splitPath(arg.slice(0, eq)), value };
}

export const parseUnset = (arg: string): Fixup => ({ op: 'unset', path: splitPath(arg) });

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** RFC 7396 JSON merge patch: objects merge, `null` removes, anything else replaces. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (FORBIDDEN.has(k)) throw new Error(`patch key "${k}" is not allowed`);
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export function applyFixups(doc: unknown, fixups: Fixup[]): unknown {
  let cur = doc;
  for (const f of fixups) {
    if (f.op === 'merge') {
      cur = mergePatch(cur, f.patch);
      continue;
    }
    if (!isObject(cur)) throw new Error('the original is not a JSON object');
    let node: Record<string, unknown> = cur;
    for (const part of f.path.slice(0, -1)) {
      const next = node[part];
      if (!isObject(next)) {
        if (f.op === 'unset') break;
        node[part] = {};
      }
      node = node[part] as Record<string, unknown>;
    }
    const last = f.path[f.path.length - 1]!;
    if (f.op === 'set') node[last] = f.value;
    else delete node[last];
  }
  return cur;
}

export type ReplayOutcome =
  | { id: string; ok: true; eventId: string; message: OutgoingMessage; preview: string }
  | { id: string; ok: false; error: string };

export interface ReplayDeps {
  opener: Opener;
  redactor: EventRedactor;
  now: number;
}

/**
 * Opens a dead letter's sealed original, applies the fix-ups and checks the result with the same
 * parser as the ingester. A valid event comes back redacted and keyed like the collector sends it
 * (the ingester judges it again); an invalid one names why, redacted, and is not sent.
 */
export function prepareReplay(r: DeadLetterRecord, fixups: Fixup[], deps: ReplayDeps): ReplayOutcome {
  const id = letterId(r);
  const fail = (error: string): ReplayOutcome => ({
    id,
    ok: false,
    error: deps.redactor.redactString(error).value,
  });
  let original: Buffer;
  if (header(r, DLQ_HEADERS.format) !== DLQ_FORMAT) {
    // Written before dead letters were redacted: the value is the original.
    original = r.value ?? Buffer.alloc(0);
  } else {
    const box = r.headers[DLQ_HEADERS.sealed];
    if (!box) return fail('no sealed original was kept (its producer had no MCP_AUDIT_DLQ_PUBLIC_KEY_FILE)');
    try {
      original = deps.opener.open(box, header(r, DLQ_HEADERS.keyId));
    } catch (err) {
      return fail((err as Error).message);
    }
  }
  let bytes = original;
  if (fixups.length > 0) {
    let doc: unknown;
    try {
      doc = JSON.parse(original.toString('utf8'));
    } catch (err) {
      return fail(`the original is not JSON, fix-ups cannot apply: ${(err as Error).message}`);
    }
    try {
      bytes = Buffer.from(JSON.stringify(applyFixups(doc, fixups)));
    } catch (err) {
      return fail((err as Error).message);
    }
  }
  const parsed = parseEvent(bytes, { now: deps.now });
  if (!parsed.ok) return fail(`still invalid: ${parsed.code}: ${parsed.reason}`);
  const { event, raw } = deps.redactor.redactEvent(parsed.event as AuditEventV1, parsed.raw);
  return {
    id,
    ok: true,
    eventId: event.event_id,
    preview: raw,
    message: {
      key: eventKeyFor(event.client.id),
      value: raw,
      headers: { [DLQ_HEADERS.replayedFrom]: `${r.topic}:${id}` },
    },
  };
}

/**
 * Reads the dead-letter topic from its start to its end as of now (a throwaway consumer group
 * that commits nothing), or until `enough` says so.
 */
export async function readDeadLetters(
  kafka: Kafka,
  topic: string,
  opts: { enough?: (seen: DeadLetterRecord[]) => boolean; timeoutMs?: number } = {},
): Promise<DeadLetterRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `mcp-audit-dlq-cli-${process.pid}-${Date.now()}`;
  let ends: Map<number, bigint>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    ends = new Map(
      offsets.filter((o) => BigInt(o.high) > BigInt(o.low)).map((o) => [o.partition, BigInt(o.high)]),
    );
  } finally {
    await admin.disconnect();
  }
  const out: DeadLetterRecord[] = [];
  if (ends.size === 0) return out;
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const remaining = new Set(ends.keys());
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out reading ${topic} (partitions left: ${[...remaining].join(', ')})`)),
        opts.timeoutMs ?? 60_000,
      );
      const finish = () => {
        clearTimeout(timer);
        resolve();
      };
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ topic: t, partition, message }) => {
            const end = ends.get(partition);
            if (end === undefined || BigInt(message.offset) >= end) return;
            out.push({
              topic: t,
              partition,
              offset: message.offset,
              key: message.key,
              value: message.value,
              headers: Object.fromEntries(
                Object.entries(message.headers ?? {}).map(([k, v]) => [
                  k,
                  v === undefined ? undefined : Buffer.isBuffer(v) ? v : Buffer.from(String(v)),
                ]),
              ),
            });
            if (BigInt(message.offset) >= end - 1n) remaining.delete(partition);
            if (remaining.size === 0 || opts.enough?.(out)) finish();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
    const a = kafka.admin();
    await a.connect();
    await a.deleteGroups([groupId]).catch(() => undefined);
    await a.disconnect();
  }
  return out.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}
