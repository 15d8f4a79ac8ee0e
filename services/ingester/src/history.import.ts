import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { parseEvent, parseStoredRaw, reconstructEvent, type AuditEventV1 } from '@mcp-audit/schema';
import type { EventRedactor } from '@mcp-audit/redaction';
import { toEventRow, type EventRow } from './events.row.js';

/**
 * Importing history (issue 14 item 9): events of any age from NDJSON files or a compliance export
 * bundle, through the live path's validation (`parseEvent`, with only the 30-day age bound lifted)
 * and redaction (`redactEvent`, the ingester's key) into the live row shape (`toEventRow`). What
 * differs from a Kafka message is recorded on the row: the label `mcp_audit.origin=import` and
 * `kafka_partition = -1` (no live row has a negative partition, so the column is the one a client
 * cannot forge), `kafka_offset` = the line number. No schema change: the ledger's canonical rows and
 * the export format stay as they are.
 *
 * An event id already stored (or repeated in the input with the same content) is skipped as a
 * duplicate; a repeat with other content is refused. Every refused line is reported with its reason.
 */

export const ORIGIN_LABEL = 'mcp_audit.origin';
export const ORIGIN_IMPORT = 'import';
/** The partition of imported rows: live rows carry their Kafka partition (>= 0). */
export const IMPORT_PARTITION = -1;

export interface ImportLine {
  /** File name (and for a bundle, the data file) the line came from. */
  source: string;
  /** 1-based line number within the source. */
  line: number;
  text: string;
  /** Set when the line is refused before parsing (a bundle row without its raw copy). */
  refused?: { code: string; reason: string };
}

export interface Rejected {
  source: string;
  line: number;
  code: string;
  reason: string;
}

export interface ImportSummary {
  lines: number;
  imported: number;
  duplicates: number;
  rejected: number;
  /** Event-time range of the imported events (epoch ms), null when nothing was imported. */
  from: number | null;
  to: number | null;
  clients: number;
}

export interface ImportDeps {
  redactor: EventRedactor;
  /** The ids among `ids` already in events (ts bounds in epoch seconds, inclusive, prune partitions). */
  storedIds(ids: string[], fromSec: number, toSec: number): Promise<Set<string>>;
  insert(rows: EventRow[]): Promise<void>;
  onReject?(r: Rejected): void;
  now?: () => number;
  /** Rows per insert (thousands: ClickHouse wants few large inserts). */
  batchRows?: number;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** One line through validation and redaction into a row, or the reason it is refused. */
export function importRow(
  l: ImportLine,
  redactor: EventRedactor,
  ingestedAtMs: number,
): { row: EventRow; digest: string } | { code: string; reason: string } {
  const parsed = parseEvent(l.text, { now: ingestedAtMs, maxAgeMs: Number.POSITIVE_INFINITY });
  if (!parsed.ok) return { code: parsed.code, reason: redactor.redactString(parsed.reason).value };
  const { event, raw } = redactor.redactEvent(parsed.event as AuditEventV1, parsed.raw);
  const labels = event.labels ?? {};
  if (Object.hasOwn(labels, ORIGIN_LABEL))
    return { code: 'AUDIT_ERR_RESERVED_LABEL', reason: `labels.${ORIGIN_LABEL} is reserved for the import` };
  const row = toEventRow(event, raw, { partition: IMPORT_PARTITION, offset: String(l.line), ingestedAtMs });
  // The origin label goes to the label columns only: toEventRow takes the event exactly as validated
  // from `raw` (its remainder is what `raw` holds beyond it).
  row.label_keys.push(ORIGIN_LABEL);
  row.label_values.push(ORIGIN_IMPORT);
  return { row, digest: sha(raw) };
}

/** Feeds lines through validation, redaction and dedup, inserting in batches; returns the tally. */
export async function importEvents(
  lines: AsyncIterable<ImportLine>,
  deps: ImportDeps,
): Promise<ImportSummary> {
  const now = deps.now ?? Date.now;
  const batchRows = deps.batchRows ?? 10_000;
  const s: ImportSummary = {
    lines: 0,
    imported: 0,
    duplicates: 0,
    rejected: 0,
    from: null,
    to: null,
    clients: 0,
  };
  const clients = new Set<string>();
  // Ids seen in this import, with the digest of their redacted raw copy (a repeat must be identical).
  const seen = new Map<string, string>();
  let batch: EventRow[] = [];
  const reject = (r: Rejected) => {
    s.rejected++;
    deps.onReject?.(r);
  };
  const flush = async () => {
    if (batch.length === 0) return;
    let lo = Infinity;
    let hi = -Infinity;
    for (const r of batch) {
      lo = Math.min(lo, r.ts);
      hi = Math.max(hi, r.ts);
    }
    const stored = await deps.storedIds(
      batch.map((r) => r.event_id),
      lo,
      hi,
    );
    const fresh = batch.filter((r) => !stored.has(r.event_id));
    s.duplicates += batch.length - fresh.length;
    if (fresh.length > 0) await deps.insert(fresh);
    for (const r of fresh) {
      const t = r.ts * 1000 + r.ts_ms;
      s.from = s.from === null ? t : Math.min(s.from, t);
      s.to = s.to === null ? t : Math.max(s.to, t);
      clients.add(r.client_id);
    }
    s.imported += fresh.length;
    batch = [];
  };
  for await (const l of lines) {
    if (l.text.trim() === '') continue;
    s.lines++;
    const r = l.refused ?? importRow(l, deps.redactor, now());
    if ('code' in r) {
      reject({ source: l.source, line: l.line, code: r.code, reason: r.reason });
      continue;
    }
    const before = seen.get(r.row.event_id);
    if (before !== undefined) {
      if (before === r.digest) s.duplicates++;
      else
        reject({
          source: l.source,
          line: l.line,
          code: 'AUDIT_ERR_EVENT_ID_CONFLICT',
          reason: `event_id ${r.row.event_id} appears earlier in the import with other content`,
        });
      continue;
    }
    seen.set(r.row.event_id, r.digest);
    batch.push(r.row);
    if (batch.length >= batchRows) await flush();
  }
  await flush();
  s.clients = clients.size;
  return s;
}

/** Lines of an NDJSON file (gzip when the name ends in .gz). */
export async function* ndjsonLines(path: string, source = path): AsyncGenerator<ImportLine> {
  const stream = createReadStream(path);
  const input = path.endsWith('.gz') ? stream.pipe(createGunzip()) : stream;
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line++;
    yield { source, line, text };
  }
}

export class BundleError extends Error {
  readonly code = 'AUDIT_ERR_IMPORT_BUNDLE';
}

interface BundleManifest {
  bundle_version: number;
  table: string;
  format: string;
  files: Array<{ name: string; rows: number; sha256: string }>;
}

/**
 * The event of a bundle row, as JSON text: its `raw` when that is the whole event (rows stored before
 * migration 013), else the row's columns with the remainder in `raw` merged in (reconstructEvent).
 */
function bundleRowEvent(row: unknown): string | undefined {
  if (row === null || typeof row !== 'object') return undefined;
  const r = row as Record<string, unknown>;
  if (typeof r.raw !== 'string' || typeof r.event_id !== 'string') return undefined;
  if (parseStoredRaw(r.raw).kind === 'full') return r.raw;
  return JSON.stringify(reconstructEvent(r));
}

/**
 * The events of a compliance export bundle (services/retention: manifest.json and gzip data files):
 * each NDJSON line is a stored row, whose columns (and `raw`, the remainder, or on older rows the whole
 * event) give the event as it was stored (redacted), which goes through validation and redaction again like any other line. Every data file's SHA-256 is
 * checked against the manifest before its first line is read. Only NDJSON bundles: CSV and OCSF
 * bundles hold the same rows, export the range again as NDJSON.
 */
export async function* bundleLines(dir: string): AsyncGenerator<ImportLine> {
  let m: BundleManifest;
  try {
    m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as BundleManifest;
  } catch (err) {
    throw new BundleError(`${dir}: manifest.json cannot be read: ${(err as Error).message}`);
  }
  if (m.bundle_version !== 1 || m.table !== 'events' || !Array.isArray(m.files))
    throw new BundleError(`${dir}: not an events export bundle (bundle_version 1, table events)`);
  if (m.format !== 'ndjson')
    throw new BundleError(
      `${dir}: a ${m.format} bundle; only NDJSON bundles are imported (export the range as ndjson)`,
    );
  for (const f of m.files) {
    if (!/^[\w.-]+$/.test(f.name)) throw new BundleError(`${dir}: data file name ${JSON.stringify(f.name)}`);
    const path = join(dir, f.name);
    const h = createHash('sha256');
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
    if (h.digest('hex') !== f.sha256)
      throw new BundleError(`${path}: SHA-256 differs from the manifest (altered or truncated file)`);
    for await (const l of ndjsonLines(path, f.name)) {
      if (l.text.trim() === '') continue;
      let text: string | undefined;
      try {
        text = bundleRowEvent(JSON.parse(l.text));
      } catch {
        text = undefined;
      }
      if (text !== undefined) yield { ...l, text };
      else
        yield {
          ...l,
          refused: {
            code: 'AUDIT_ERR_MALFORMED_JSON',
            reason: 'not a bundle row: no JSON object with event_id and raw columns',
          },
        };
    }
  }
}

/**
 * The daily baseline versions (00:00 UTC) from the day after the first imported event to the day after
 * the last one (at most today): the detector's own job (`cli.js baselines --from --to`), over the
 * hourly rollups the insert filled. Undefined when that holds no whole day (e.g. events of the last
 * hour only, even across midnight).
 */
export function baselineRange(
  from: number,
  to: number,
  now: number,
): { from: number; to: number } | undefined {
  const DAY = 86_400_000;
  const first = Math.floor(from / DAY) * DAY + DAY;
  const last = Math.min(Math.floor(to / DAY) * DAY + DAY, Math.floor(now / DAY) * DAY);
  return last > first ? { from: first, to: last } : undefined;
}
