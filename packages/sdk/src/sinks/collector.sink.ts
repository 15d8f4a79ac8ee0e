import { AuditDeliveryError, type AuditEvent, type AuditSink, type SinkSendResult } from '../sink.js';

export interface CollectorSinkOptions {
  /** The collector's base URL (`http://127.0.0.1:9470`) or its full `/v1/events` URL. */
  url: string;
  /** An ingest token of this source (`Authorization: Bearer …`); its source id must equal `source.id`. */
  token: string;
  /** Per request. Default 10 000 ms. */
  timeoutMs?: number;
  /** Most events per request (the collector's default limit is 5000). Default 1000. */
  maxEventsPerRequest?: number;
  /** Most body bytes per request (the collector's default limit is 5 MiB). Default 4 MiB. */
  maxBodyBytes?: number;
  fetch?: typeof fetch;
}

interface CollectorResponse {
  accepted?: number;
  rejected?: number;
  results?: Array<{ status: string; code?: string; reason?: string }>;
}

/**
 * POSTs batches as a JSON array to the collector's `/v1/events` (services/collector/src/app.ts). A
 * 2xx means Kafka holds every accepted event; a 400 whose body lists per-event results means every
 * event was refused for good (the collector dead-letters them) and is reported as `rejected`, not
 * retried. Anything else (network error, timeout, 401/403, 413, 429, 5xx, 503 while Kafka is down)
 * rejects with an AuditDeliveryError, so the emitter retries the batch with backoff.
 */
export function createCollectorSink(opts: CollectorSinkOptions): AuditSink {
  let url: URL;
  try {
    url = new URL(opts.url);
  } catch {
    throw new TypeError('createCollectorSink: url must be an absolute http(s) URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError('createCollectorSink: url must be an absolute http(s) URL');
  }
  if (!url.pathname.endsWith('/v1/events'))
    url = new URL(`${url.pathname.replace(/\/$/, '')}/v1/events`, url);
  if (typeof opts.token !== 'string' || opts.token.length === 0) {
    throw new TypeError('createCollectorSink: token must be a non-empty ingest token');
  }
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxEvents = opts.maxEventsPerRequest ?? 1000;
  const maxBytes = opts.maxBodyBytes ?? 4 * 1024 * 1024;
  let closed = false;

  async function post(body: string, count: number): Promise<number> {
    let res: Response;
    try {
      res = await doFetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${opts.token}` },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new AuditDeliveryError(
        'AUDIT_ERR_COLLECTOR_UNAVAILABLE',
        `collector ${url.origin} unreachable: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const text = await res.text().catch(() => '');
    let parsed: CollectorResponse | undefined;
    try {
      parsed = JSON.parse(text) as CollectorResponse;
    } catch {
      parsed = undefined;
    }
    if (res.ok) return parsed?.rejected ?? 0;
    if (res.status === 400 && Array.isArray(parsed?.results)) return count;
    const detail = (parsed as { error?: string; message?: string } | undefined) ?? {};
    throw new AuditDeliveryError(
      res.status >= 500 ? 'AUDIT_ERR_COLLECTOR_UNAVAILABLE' : 'AUDIT_ERR_COLLECTOR_REFUSED',
      `collector answered ${res.status}${detail.error ? ` ${detail.error}` : ''}${detail.message ? `: ${detail.message.slice(0, 300)}` : ''}`,
      { status: res.status },
    );
  }

  return {
    async send(events: AuditEvent[]): Promise<SinkSendResult> {
      if (closed) throw new Error('collector sink is closed');
      let rejected = 0;
      let chunk: string[] = [];
      let bytes = 2;
      // NOTE: chunks are posted in order and a failure rejects the whole call: the emitter resends
      // all of it, and the chunks already accepted are deduplicated downstream by event_id.
      for (const e of events) {
        const json = JSON.stringify(e);
        const size = Buffer.byteLength(json) + 1;
        if (chunk.length > 0 && (chunk.length >= maxEvents || bytes + size > maxBytes)) {
          rejected += await post(`[${chunk.join(',')}]`, chunk.length);
          chunk = [];
          bytes = 2;
        }
        chunk.push(json);
        bytes += size;
      }
      if (chunk.length > 0) rejected += await post(`[${chunk.join(',')}]`, chunk.length);
      return { rejected };
    },
    async close(): Promise<void> {
      closed = true;
    },
  };
}
