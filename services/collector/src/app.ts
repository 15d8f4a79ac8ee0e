import Fastify, { LogController, type FastifyRequest } from 'fastify';
import { eventKeyFor, parseEventDocument } from '@mcp-audit/schema';
import {
  chunkBySize,
  createDeadLetterBuilder,
  DLQ_HEADERS,
  type AuditProducer,
  type OutgoingMessage,
  type Sealer,
} from '@mcp-audit/kafka';
import {
  AuditError,
  createRateLimiter,
  httpStatusFor,
  perMinute,
  registerOpsRoutes,
  type Logger,
  type Registry,
  Counter,
} from '@mcp-audit/service-kit';
import type { EventRedactor } from '@mcp-audit/redaction';
import type { SourceCredential, TokenStore } from './source-tokens.js';
import { splitJsonArray, splitNdjson } from './split-body.js';

export interface CollectorConfig {
  eventsTopic: string;
  dlqTopic: string;
  bodyLimitBytes: number;
  maxEventsPerRequest: number;
  /** Requests per source per minute (a token bucket holding a minute's worth). */
  rateLimitPerMinute: number;
  /** Requests per client address per minute that fail authentication; beyond it, 429 before any check. */
  authFailuresPerMinute?: number;
  requestTimeoutMs: number;
  /** Seconds a client is told to wait when Kafka is unavailable. */
  retryAfterSeconds?: number;
}

export interface CollectorDeps {
  producer: AuditProducer;
  tokens: TokenStore;
  redactor: EventRedactor;
  /** Seals rejected events' original bytes to the `dlq replay` key; without it only redacted previews are kept. */
  dlqSealer?: Sealer;
  log: Logger;
  registry: Registry;
  now?: () => number;
  health?: () => { ok: boolean; details: Record<string, unknown> };
}

export type EventResult =
  | { index: number; status: 'accepted'; event_id: string }
  | { index: number; status: 'rejected'; event_id?: string; code: string; reason: string };

declare module 'fastify' {
  interface FastifyRequest {
    source?: SourceCredential;
  }
}

/** Items of a body before validation: the bytes of each event, exactly as the source sent them. */
interface RawItems {
  items: Buffer[];
}

class RateLimitedError extends AuditError {
  readonly retryAfterSeconds: number;
  constructor(message: string, waitMs: number) {
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    super('AUDIT_ERR_RATE_LIMITED', `${message}; retry in ${seconds}s`, { retryable: true });
    this.retryAfterSeconds = seconds;
  }
}

function authenticate(tokens: TokenStore, header: string | undefined): SourceCredential {
  const m = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (!m)
    throw new AuditError('AUDIT_ERR_UNAUTHENTICATED', 'missing bearer token (Authorization: Bearer <token>)');
  const v = tokens.verify(m[1]!);
  const cred = v.ok ? v.credential : undefined;
  if (!cred) throw new AuditError('AUDIT_ERR_UNAUTHENTICATED', 'invalid bearer token');
  if (!cred.scopes.includes('ingest')) {
    throw new AuditError('AUDIT_ERR_FORBIDDEN', `token ${cred.id} lacks the ingest scope`);
  }
  return cred;
}

export function buildCollector(cfg: CollectorConfig, deps: CollectorDeps) {
  const now = deps.now ?? Date.now;
  const log = deps.log.child({ component: 'collector' });
  const deadLetters = createDeadLetterBuilder({
    redactor: deps.redactor,
    ...(deps.dlqSealer ? { sealer: deps.dlqSealer } : {}),
  });
  const accepted = new Counter({
    name: 'mcp_audit_collector_events_accepted_total',
    help: 'Events acknowledged by Kafka',
    labelNames: ['source_id'],
    registers: [deps.registry],
  });
  const rejected = new Counter({
    name: 'mcp_audit_collector_events_rejected_total',
    help: 'Events rejected, by reason code',
    labelNames: ['code'],
    registers: [deps.registry],
  });
  const requests = new Counter({
    name: 'mcp_audit_collector_requests_total',
    help: 'Requests to /v1/events by status code',
    labelNames: ['status'],
    registers: [deps.registry],
  });

  const app = Fastify({
    loggerInstance: log,
    bodyLimit: cfg.bodyLimitBytes,
    requestTimeout: cfg.requestTimeoutMs,
    connectionTimeout: cfg.requestTimeoutMs,
    // one log line per batch from the handler, not two per request from fastify
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: false,
  });
  let closing = false;
  app.addHook('onClose', async () => {
    closing = true;
  });

  const limited = new Counter({
    name: 'mcp_audit_collector_rate_limited_total',
    help: 'Requests refused with 429 before their body was read, by limit',
    labelNames: ['limit'],
    registers: [deps.registry],
  });
  const perSource = createRateLimiter({ ...perMinute(cfg.rateLimitPerMinute), now });
  const authFailures = createRateLimiter({ ...perMinute(cfg.authFailuresPerMinute ?? 30), now });

  app.removeAllContentTypeParsers();
  // Bodies stay bytes: each item is cut out unparsed and judged by parseEvent like a Kafka message.
  const itemsParser =
    (split: (body: Buffer) => Buffer[]) =>
    (_req: FastifyRequest, body: Buffer, done: (err: Error | null, v?: RawItems) => void) => {
      try {
        done(null, { items: split(body) });
      } catch (err) {
        done(err as Error);
      }
    };
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, itemsParser(splitJsonArray));
  app.addContentTypeParser(
    ['application/x-ndjson', 'application/ndjson'],
    { parseAs: 'buffer' },
    itemsParser(splitNdjson),
  );

  // One place maps error codes to statuses; messages name what is wrong, never internals.
  app.setErrorHandler((err, _req, reply) => {
    let status: number;
    let code: string;
    if (err instanceof AuditError) {
      status = httpStatusFor(err.code);
      code = err.code;
    } else if ((err as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      code = 'AUDIT_ERR_BODY_TOO_LARGE';
    } else if ((err as { code?: string }).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      status = 415;
      code = 'AUDIT_ERR_UNSUPPORTED_MEDIA_TYPE';
    } else if (
      typeof (err as { statusCode?: number }).statusCode === 'number' &&
      (err as { statusCode: number }).statusCode < 500
    ) {
      status = (err as { statusCode: number }).statusCode;
      code = status === 429 ? 'AUDIT_ERR_RATE_LIMITED' : 'AUDIT_ERR_INVALID_REQUEST';
    } else {
      status = 500;
      code = 'AUDIT_ERR_INTERNAL';
      log.error({ err }, 'unhandled error');
    }
    if (status === 503) reply.header('retry-after', String(cfg.retryAfterSeconds ?? 5));
    if (err instanceof RateLimitedError) reply.header('retry-after', String(err.retryAfterSeconds));
    requests.inc({ status: String(status) });
    // NOTE: a Kafka error names brokers and topics; the caller only needs to know to come back.
    const message =
      status === 500
        ? 'internal error'
        : status === 503
          ? `the event log is unavailable; nothing was accepted, retry after ${cfg.retryAfterSeconds ?? 5} s`
          : (err as Error).message;
    if (status === 503) log.warn({ err }, 'kafka unavailable: answered 503');
    return reply.code(status).send({ error: code, message });
  });

  registerOpsRoutes(app, {
    registry: deps.registry,
    health: () => {
      const h = deps.health?.() ?? { ok: true, details: {} };
      return { ok: h.ok && !closing && deps.producer.isConnected(), details: h.details };
    },
  });

  app.register(async (scope) => {
    // Everything here reads headers only, so a refused request's body is never read or parsed.
    // NOTE: behind a proxy every request shares the proxy's address (trustProxy is off), so failed
    // authentications of one source throttle the others: size authFailuresPerMinute for that.
    scope.addHook('onRequest', async (req) => {
      if (closing) throw new AuditError('AUDIT_ERR_SHUTTING_DOWN', 'collector is shutting down');
      // A throttled address is refused before its token is checked, so guessing gains nothing.
      const blocked = authFailures.peek(req.ip);
      if (blocked > 0) {
        limited.inc({ limit: 'address' });
        throw new RateLimitedError('too many failed authentications from this address', blocked);
      }
      let cred: SourceCredential;
      try {
        cred = authenticate(deps.tokens, req.headers.authorization);
      } catch (err) {
        authFailures.take(req.ip);
        throw err;
      }
      const wait = perSource.take(cred.source_id);
      if (wait > 0) {
        limited.inc({ limit: 'source' });
        throw new RateLimitedError(
          `source ${cred.source_id} is over its rate of ${cfg.rateLimitPerMinute} requests per minute`,
          wait,
        );
      }
      req.source = cred;
    });

    scope.post('/v1/events', async (req, reply) => {
      const body = req.body as RawItems | undefined;
      if (!body || body.items.length === 0) {
        throw new AuditError(
          'AUDIT_ERR_INVALID_REQUEST',
          'body holds no events (send a JSON array or NDJSON)',
        );
      }
      if (body.items.length > cfg.maxEventsPerRequest) {
        throw new AuditError(
          'AUDIT_ERR_INVALID_REQUEST',
          `${body.items.length} events in one request; the limit is ${cfg.maxEventsPerRequest}`,
        );
      }
      const source = req.source!;
      const results: EventResult[] = [];
      const out: OutgoingMessage[] = [];
      const dead: OutgoingMessage[] = [];
      const t = now();
      const reject = (index: number, raw: Buffer, r: { code: string; reason: string; event_id?: string }) => {
        results.push({ index, status: 'rejected', ...r });
        rejected.inc({ code: r.code });
        // Redacted like everything else; the bytes as sent only sealed to the replay key.
        dead.push(
          deadLetters.build({
            original: raw,
            key: null,
            code: r.code,
            reason: r.reason,
            context: {
              [DLQ_HEADERS.topic]: 'collector',
              'mcp-audit-collector-source-id': source.source_id,
            },
            atMs: t,
          }),
        );
      };
      // A batch mostly comes from a few clients: each one's partition key is hashed once.
      const keys = new Map<string, string>();
      const keyFor = (clientId: string) => {
        let k = keys.get(clientId);
        if (k === undefined) keys.set(clientId, (k = eventKeyFor(clientId)));
        return k;
      };
      body.items.forEach((raw, index) => {
        // The same parser as a Kafka message's, on the same bytes, whatever the content type.
        const parsed = parseEventDocument(raw, { now: t });
        if (!parsed.ok) {
          reject(index, raw, { code: parsed.code, reason: deps.redactor.redactString(parsed.reason).value });
          return;
        }
        if (parsed.event.source.id !== source.source_id) {
          reject(index, raw, {
            code: 'AUDIT_ERR_SOURCE_MISMATCH',
            reason: deps.redactor.redactString(
              `source.id "${parsed.event.source.id}" does not match the token's source "${source.source_id}"`,
            ).value,
            event_id: parsed.event.event_id,
          });
          return;
        }
        // Byte-identical to what the source sent unless redaction replaced something.
        // With the document the parser already has, a clean event (the usual one) is checked in one
        // pass without copying, instead of being redacted into a copy and its text parsed again.
        const { event: redacted, raw: redactedRaw } = deps.redactor.redactEvent(
          parsed.event,
          parsed.raw,
          parsed.document,
        );
        // Keyed by the redacted identity: a secret pasted into client.id never reaches the key.
        out.push({ key: keyFor(redacted.client.id), value: redactedRaw });
        results.push({ index, status: 'accepted', event_id: parsed.event.event_id });
      });
      // Nothing is acknowledged before Kafka has it (acks=-1); a failure here is a 503, never a 2xx.
      await deps.producer.send(cfg.eventsTopic, out);
      if (dead.length > 0) {
        try {
          for (const chunk of chunkBySize(dead)) await deps.producer.send(cfg.dlqTopic, chunk);
        } catch (err) {
          // The caller is told per event why it was rejected, so nothing valid is lost here.
          log.warn({ err, count: dead.length }, 'could not dead-letter rejected events');
        }
      }
      accepted.inc({ source_id: source.source_id }, out.length);
      const status = out.length > 0 ? 200 : 400;
      requests.inc({ status: String(status) });
      if (dead.length > 0)
        log.info(
          { source: source.source_id, accepted: out.length, rejected: dead.length },
          'events rejected',
        );
      return reply.code(status).send({ accepted: out.length, rejected: dead.length, results });
    });
  });

  return app;
}
