import Fastify, { LogController, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { parseEvent, type AuditEventV1 } from '@mcp-audit/schema';
import type { AuditProducer, OutgoingMessage } from '@mcp-audit/kafka';
import { AuditError, httpStatusFor, type Logger, type Registry, Counter } from '@mcp-audit/observability';
import type { EventRedactor } from '@mcp-audit/redaction';
import type { SourceCredential, TokenStore } from './source-tokens.js';

export interface CollectorConfig {
  eventsTopic: string;
  dlqTopic: string;
  bodyLimitBytes: number;
  maxEventsPerRequest: number;
  rateLimitPerMinute: number;
  requestTimeoutMs: number;
  /** Seconds a client is told to wait when Kafka is unavailable. */
  retryAfterSeconds?: number;
}

export interface CollectorDeps {
  producer: AuditProducer;
  tokens: TokenStore;
  redactor: EventRedactor;
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

/** Items of a body before validation: the raw JSON text of each event. */
interface RawItems {
  items: string[];
}

function splitJsonArray(body: string): RawItems {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new AuditError('AUDIT_ERR_INVALID_REQUEST', `body is not valid JSON: ${(err as Error).message}`);
  }
  const arr = Array.isArray(parsed) ? parsed : [parsed];
  // Re-serialised per item so each is validated (size, prototype keys) exactly like a Kafka message.
  return { items: arr.map((e) => JSON.stringify(e) ?? 'null') };
}

function splitNdjson(body: string): RawItems {
  return { items: body.split('\n').filter((l) => l.trim().length > 0) };
}

export function buildCollector(cfg: CollectorConfig, deps: CollectorDeps) {
  const now = deps.now ?? Date.now;
  const log = deps.log.child({ component: 'collector' });
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

  app.removeAllContentTypeParsers();
  const textParser =
    (split: (s: string) => RawItems) =>
    (_req: FastifyRequest, body: string, done: (err: Error | null, v?: RawItems) => void) => {
      try {
        done(null, split(body));
      } catch (err) {
        done(err as Error);
      }
    };
  app.addContentTypeParser('application/json', { parseAs: 'string' }, textParser(splitJsonArray));
  app.addContentTypeParser(
    ['application/x-ndjson', 'application/ndjson'],
    { parseAs: 'string' },
    textParser(splitNdjson),
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
    requests.inc({ status: String(status) });
    const message = status === 500 ? 'internal error' : (err as Error).message;
    return reply.code(status).send({ error: code, message });
  });

  app.get('/health', async (_req, reply) => {
    const h = deps.health?.() ?? { ok: true, details: {} };
    const ok = h.ok && !closing && deps.producer.isConnected();
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unhealthy', ...h.details });
  });
  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', deps.registry.contentType).send(await deps.registry.metrics()),
  );

  app.register(async (scope) => {
    // Authenticate first, then rate-limit per authenticated source.
    scope.addHook('onRequest', async (req) => {
      if (closing) throw new AuditError('AUDIT_ERR_SHUTTING_DOWN', 'collector is shutting down');
      const header = req.headers.authorization;
      const m = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
      if (!m)
        throw new AuditError(
          'AUDIT_ERR_UNAUTHENTICATED',
          'missing bearer token (Authorization: Bearer <token>)',
        );
      const cred = deps.tokens.verify(m[1]!);
      if (!cred) throw new AuditError('AUDIT_ERR_UNAUTHENTICATED', 'invalid bearer token');
      if (!cred.scopes.includes('ingest')) {
        throw new AuditError('AUDIT_ERR_FORBIDDEN', `token ${cred.id} lacks the ingest scope`);
      }
      req.source = cred;
    });
    await scope.register(rateLimit, {
      hook: 'preHandler',
      max: cfg.rateLimitPerMinute,
      timeWindow: 60_000,
      keyGenerator: (req) => `source:${req.source?.source_id ?? req.ip}`,
      errorResponseBuilder: (_req, ctx) =>
        Object.assign(
          new Error(
            `rate limit of ${ctx.max} requests per minute exceeded; retry in ${Math.ceil(ctx.ttl / 1000)}s`,
          ),
          {
            statusCode: 429,
          },
        ),
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
      const outIndex: number[] = [];
      const dead: OutgoingMessage[] = [];
      const t = now();
      body.items.forEach((raw, index) => {
        const parsed = parseEvent(raw, { now: t });
        let rejection: { code: string; reason: string; event_id?: string } | undefined;
        if (!parsed.ok)
          rejection = { code: parsed.code, reason: deps.redactor.redactString(parsed.reason).value };
        else if (parsed.event.source.id !== source.source_id) {
          rejection = {
            code: 'AUDIT_ERR_SOURCE_MISMATCH',
            reason: `source.id "${parsed.event.source.id}" does not match the token's source "${source.source_id}"`,
            event_id: parsed.event.event_id,
          };
        }
        if (rejection) {
          results.push({ index, status: 'rejected', ...rejection });
          rejected.inc({ code: rejection.code });
          dead.push({
            key: null,
            value: raw,
            headers: {
              'mcp-audit-dlq-code': rejection.code,
              'mcp-audit-dlq-reason': rejection.reason.slice(0, 2048),
              'mcp-audit-source-topic': 'collector',
              'mcp-audit-collector-source-id': source.source_id,
              'mcp-audit-dlq-at': new Date(t).toISOString(),
            },
          });
          return;
        }
        const ev = parsed.ok ? (parsed.event as AuditEventV1) : undefined;
        const { raw: redactedRaw } = deps.redactor.redactEvent(ev!, parsed.ok ? parsed.raw : raw);
        out.push({ key: ev!.client.id, value: redactedRaw });
        outIndex.push(index);
        results.push({ index, status: 'accepted', event_id: ev!.event_id });
      });
      // Nothing is acknowledged before Kafka has it (acks=-1); a failure here is a 503, never a 2xx.
      await deps.producer.send(cfg.eventsTopic, out);
      if (dead.length > 0) {
        try {
          await deps.producer.send(cfg.dlqTopic, dead);
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
