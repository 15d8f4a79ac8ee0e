import { sql, type ClickHouse, type SqlFragment } from '@mcp-audit/clickhouse';
import { searchEvents, type EventSummary } from './events.queries.js';

/**
 * An export, streamed: keyset pages of the search (memory stays at one page) until the row cap.
 * CSV cells are quoted, and a cell that a spreadsheet would run as a formula (= + - @, tab, CR) gets a
 * leading apostrophe (OWASP "CSV injection").
 */
const PAGE = 5_000;

export const CSV_COLUMNS = [
  'event_id',
  'ts',
  'kind',
  'outcome',
  'client_id',
  'client_user',
  'client_ip',
  'session_id',
  'source_id',
  'server_name',
  'tool_name',
  'method',
  'duration_ms',
  'error_message',
  'labels',
] as const;

export function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n']/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s;
}

export const csvRow = (e: EventSummary): string =>
  CSV_COLUMNS.map((c) => csvCell((e as unknown as Record<string, unknown>)[c])).join(',') + '\r\n';

export async function* exportStream(
  ch: ClickHouse,
  where: SqlFragment,
  format: 'ndjson' | 'csv',
  cap: number,
  done: (sent: number, err?: unknown) => void,
): AsyncGenerator<string> {
  let sent = 0;
  let cursor: string | undefined;
  try {
    if (format === 'csv') yield CSV_COLUMNS.join(',') + '\r\n';
    while (sent < cap) {
      const page = await searchEvents(ch, sql`${where}`, { limit: Math.min(PAGE, cap - sent), cursor });
      let chunk = '';
      for (const e of page.items) chunk += format === 'csv' ? csvRow(e) : JSON.stringify(e) + '\n';
      sent += page.items.length;
      if (chunk) yield chunk;
      if (!page.next_cursor) break;
      cursor = page.next_cursor;
    }
    done(sent);
  } catch (err) {
    done(sent, err);
    throw err;
  }
}
