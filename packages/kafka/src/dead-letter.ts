import type { OutgoingMessage } from './producer.js';
import type { Sealer } from './sealed-box.js';

/** Header names on dead-lettered messages (documented in the README). */
export const DLQ_HEADERS = {
  code: 'mcp-audit-dlq-code',
  reason: 'mcp-audit-dlq-reason',
  topic: 'mcp-audit-source-topic',
  partition: 'mcp-audit-source-partition',
  offset: 'mcp-audit-source-offset',
  at: 'mcp-audit-dlq-at',
  /** `2`: the value is a redacted preview (no header: a letter from before, the original in clear). */
  format: 'mcp-audit-dlq-format',
  /** Present when the preview was cut at the preview limit. */
  truncated: 'mcp-audit-dlq-preview-truncated',
  /** The original bytes in a sealed box (binary), and the id of the key it is sealed to. */
  sealed: 'mcp-audit-dlq-sealed',
  keyId: 'mcp-audit-dlq-key-id',
  /** Set by `dlq replay` on what it sends back: `<dlq topic>:<partition>:<offset>`. */
  replayedFrom: 'mcp-audit-replayed-from',
} as const;

export const DLQ_FORMAT = '2';

/** What the dead-letter envelope needs of a redactor (`@mcp-audit/redaction`'s EventRedactor fits). */
export interface DeadLetterRedactor {
  redactEvent<E extends object>(event: E): { raw: string };
  redactValue(value: unknown): { value: unknown };
  redactString(s: string): { value: string };
}

export interface DeadLetterOptions {
  redactor: DeadLetterRedactor;
  /** Seals the original bytes for `dlq replay`; without it only the redacted preview is kept. */
  sealer?: Sealer;
  /** The readable preview is cut here (the sealed original is whole). Default 64 KiB. */
  previewBytes?: number;
}

export interface DeadLetterInput {
  /** The bytes as received. */
  original: Buffer | null;
  /** The message key as received (an events-topic key, or whatever a direct producer sent). */
  key: string | Buffer | null;
  code: string;
  reason: string;
  /** Where it came from: source topic, partition, offset, collector source id, … */
  context: Record<string, string>;
  atMs: number;
}

const MAX_HEADER_CHARS = 2_048;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Cut at a byte budget without splitting a UTF-8 sequence. */
function cutUtf8(s: string, maxBytes: number): { text: string; cut: boolean } {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= maxBytes) return { text: s, cut: false };
  let end = maxBytes;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return { text: b.subarray(0, end).toString('utf8'), cut: true };
}

/**
 * Builds dead letters that hold no secret in clear: the value is the redacted payload (the parsed
 * JSON redacted like an event when it parses, else its text redacted), every header and the key
 * are redacted text, and the original bytes — needed to replay after a fix — travel only in a
 * sealed box that producers cannot open.
 */
export function createDeadLetterBuilder(opts: DeadLetterOptions) {
  const previewBytes = opts.previewBytes ?? 64 * 1024;
  const r = opts.redactor;
  const text = (s: string) => r.redactString(s).value;

  function preview(original: Buffer): string {
    if (original.length === 0) return '';
    const s = original.toString('utf8');
    let doc: unknown;
    try {
      doc = JSON.parse(s);
    } catch {
      return text(s);
    }
    try {
      if (isPlainObject(doc)) return r.redactEvent(doc).raw;
      return JSON.stringify(r.redactValue(doc).value) ?? '';
    } catch {
      // Never fall back to the original: a failed structured pass still gets the text pass.
      return text(s);
    }
  }

  return {
    sealsOriginals: opts.sealer !== undefined,
    build(d: DeadLetterInput): OutgoingMessage {
      const original = d.original ?? Buffer.alloc(0);
      const p = cutUtf8(preview(original), previewBytes);
      const headers: Record<string, string | Buffer> = {
        [DLQ_HEADERS.format]: DLQ_FORMAT,
        [DLQ_HEADERS.code]: text(d.code).slice(0, 128),
        [DLQ_HEADERS.reason]: cutUtf8(text(d.reason), MAX_HEADER_CHARS).text,
        [DLQ_HEADERS.at]: new Date(d.atMs).toISOString(),
      };
      for (const [k, v] of Object.entries(d.context)) headers[k] = cutUtf8(text(v), MAX_HEADER_CHARS).text;
      if (p.cut) headers[DLQ_HEADERS.truncated] = String(original.length);
      if (opts.sealer && original.length > 0) {
        headers[DLQ_HEADERS.sealed] = opts.sealer.seal(original);
        headers[DLQ_HEADERS.keyId] = opts.sealer.keyId;
      }
      const key = d.key === null ? null : text(Buffer.isBuffer(d.key) ? d.key.toString('utf8') : d.key);
      return { key, value: p.text, headers };
    },
  };
}

export type DeadLetterBuilder = ReturnType<typeof createDeadLetterBuilder>;

/** Bytes a message adds to a produce request, roughly (value, key and headers). */
export function messageBytes(m: OutgoingMessage): number {
  let n = Buffer.byteLength(m.value) + (m.key === null ? 0 : Buffer.byteLength(m.key));
  for (const [k, v] of Object.entries(m.headers ?? {})) n += k.length + Buffer.byteLength(v);
  return n;
}

/**
 * Splits messages into sends of at most `maxBytes` each (a message larger than that goes alone).
 * NOTE: kafkajs puts one send's messages for a partition into one record batch, which the broker
 * refuses whole beyond the topic's max.message.bytes; sealed originals do not compress.
 */
export function chunkBySize(messages: OutgoingMessage[], maxBytes = 768 * 1024): OutgoingMessage[][] {
  const chunks: OutgoingMessage[][] = [];
  let cur: OutgoingMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    const n = messageBytes(m);
    if (cur.length > 0 && bytes + n > maxBytes) {
      chunks.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(m);
    bytes += n;
  }
  if (cur.length > 0) chunks.push(cur);
  return chunks;
}
