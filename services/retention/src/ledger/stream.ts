import { toSql, type SqlFragment } from '@mcp-audit/clickhouse';

/**
 * Streaming reads from ClickHouse's HTTP interface, for results too large to hold (leaf lists,
 * exports). @mcp-audit/clickhouse's `query` buffers the whole result, so this sends the same
 * SqlFragment (built only through the literal encoder) and hands back the body chunk by chunk.
 */
export interface ChConnection {
  url: string;
  username: string;
  password: string;
  /** Default database of the queries. */
  database?: string | undefined;
}

export type RowStream = ((
  q: SqlFragment,
  settings?: Record<string, string | number>,
) => AsyncIterable<Uint8Array>) & {
  /** `INSERT … FORMAT RowBinary` with the rows' bytes as the body. */
  insert?: (q: SqlFragment, body: Buffer) => Promise<void>;
};

export class StreamQueryError extends Error {
  readonly code = 'AUDIT_ERR_CLICKHOUSE_STREAM';
}

/**
 * fetch for a read, once more when the pooled keep-alive socket turns out closed before any
 * response. NOTE: ClickHouse closes idle HTTP connections after its keep_alive_timeout (3 s); a
 * query sent on such a socket as it closes fails with "other side closed" (seen in the bench after
 * a 10 s verify). A SELECT that got no response can be sent again; inserts are never retried here.
 */
async function fetchRetryingStaleSocket(u: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(u, init);
  } catch (err) {
    const code = ((err as { cause?: { code?: string } }).cause ?? {}).code;
    if (code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET') throw err;
    return fetch(u, init);
  }
}

export function createRowStream(conn: ChConnection): RowStream {
  const auth = `Basic ${Buffer.from(`${conn.username}:${conn.password}`).toString('base64')}`;
  const url = (params: URLSearchParams) => `${conn.url.replace(/\/$/, '')}/?${params.toString()}`;
  const stream: RowStream = async function* (q, settings = {}) {
    const params = new URLSearchParams();
    if (conn.database) params.set('database', conn.database);
    for (const [k, v] of Object.entries(settings)) params.set(k, String(v));
    const res = await fetchRetryingStaleSocket(url(params), {
      method: 'POST',
      body: toSql(q),
      headers: { Authorization: auth },
    });
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      throw new StreamQueryError(`ClickHouse ${res.status}: ${text.slice(0, 500)}`);
    }
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) yield chunk;
  };
  stream.insert = async (q, body) => {
    const params = new URLSearchParams();
    if (conn.database) params.set('database', conn.database);
    params.set('query', toSql(q));
    const res = await fetch(url(params), { method: 'POST', body, headers: { Authorization: auth } });
    if (!res.ok) throw new StreamQueryError(`ClickHouse ${res.status}: ${(await res.text()).slice(0, 500)}`);
    await res.arrayBuffer();
  };
  return stream;
}

/**
 * Reads a RowBinary body. NOTE: ClickHouse reports an error that happens after the first bytes by
 * appending its message to the body, so every stream here ends with a sentinel row the query sorts
 * last: a body without it (or with bytes after it) is refused, never taken as a short result.
 */
export class RowBinaryReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;

  push(chunk: Uint8Array): void {
    const rest = this.buf.subarray(this.pos);
    this.buf =
      rest.length === 0
        ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
        : Buffer.concat([rest, chunk]);
    this.pos = 0;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  /** Marks a position to rewind to when a row is incomplete. */
  mark(): number {
    return this.pos;
  }

  rewind(p: number): void {
    this.pos = p;
  }

  u32(): number | undefined {
    if (this.remaining < 4) return undefined;
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  bytes(n: number): Buffer | undefined {
    if (this.remaining < n) return undefined;
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A LEB128 length (array sizes). */
  varint(): number | undefined {
    let v = 0;
    let shift = 0;
    let p = this.pos;
    for (;;) {
      if (p >= this.buf.length) return undefined;
      const b = this.buf[p++]!;
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
    }
    this.pos = p;
    return v;
  }

  /** A String: LEB128 length, then the bytes. */
  string(): Buffer | undefined {
    let len = 0;
    let shift = 0;
    let p = this.pos;
    for (;;) {
      if (p >= this.buf.length) return undefined;
      const b = this.buf[p++]!;
      len += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
    }
    if (this.buf.length - p < len) return undefined;
    this.pos = p + len;
    return this.buf.subarray(p, p + len);
  }
}
