import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { Readable } from 'node:stream';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { z } from 'zod';
import { clickHouseErrorCode, ClickHouseRequestError, type ClickHouse } from '@mcp-audit/clickhouse';
import type { AuditProducer } from '@mcp-audit/kafka';
import { createRateLimiter, perMinute, presentedCredential, type Logger } from '@mcp-audit/service-kit';
import { grants, type ApiScope, type KeyRing } from './api-keys.js';
import type { ApiConfig } from './config.js';
import { ApiError, errorBody, queryLimitOf, type ApiErrorCode } from './errors.js';
import { hostAllowed, originAllowed, securityHeaders } from './http.security.js';
import { createSessionStore, csrfMatches } from './sessions.js';
import type { AccessLogRow, AccessLogWriter } from './access-log.js';
import { registerRoutes } from './routes.js';
import { registerComplianceRoutes, type ComplianceDeps } from './compliance.routes.js';
import { registerIncidentRoutes } from './incidents.routes.js';
import { createTriage } from './triage.js';

/** Who a route is for: everyone, a console session holder, or a key scope (admin implies all). */
export type RouteScope = 'public' | 'session' | ApiScope;

/** What every route of the route table declares (fastify route `config`). */
export interface RouteConfig {
  scope: RouteScope;
  /** Reads or changes audit data: one access_log row before the answer completes. */
  audit: boolean;
}

export interface Principal {
  keyId: string;
  scopes: readonly string[];
  via: 'key' | 'session';
}

/** What a handler tells the access log about its request. */
export interface AuditNote {
  filters?: unknown;
  range?: { from: number; to: number } | undefined;
  rows?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
    auditNote: AuditNote;
    startedAt: number;
  }
  interface FastifyContextConfig {
    scope?: RouteScope;
    audit?: boolean;
  }
}

export interface ApiDeps {
  /** mcp_api_reader: readonly, with the per-query limits of its settings profile. */
  reader: ClickHouse;
  /** mcp_api: access_log and alert_transitions only. */
  writer: ClickHouse;
  producer: AuditProducer;
  keys: KeyRing;
  accessLog: AccessLogWriter;
  log: Logger;
  now?: () => number;
  /** Legal holds, verify and exports (compliance.routes.ts); the routes answer 503 without it. */
  compliance?: ComplianceDeps;
}

export const SESSION_COOKIE = 'mcpa_session';
export const CONSOLE_ROUTES = [
  '/',
  '/login',
  '/events',
  '/events/:event_id',
  '/sessions/:session_id',
  '/clients/:client_id',
  '/alerts',
  '/alerts/:alert_id',
  '/incidents',
  '/incidents/:incident_id',
  '/access-log',
  '/holds',
];

/** A registered route as the authorization matrix sees it. */
export interface RegisteredRoute {
  method: string;
  url: string;
  scope: RouteScope | undefined;
  audit: boolean;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** zod at the edge: the route schemas are zod objects; a failure names the field. */
function zodValidator({ schema, httpPart }: { schema: unknown; httpPart?: string }) {
  const s = schema as z.ZodType;
  return (data: unknown) => {
    const r = s.safeParse(data ?? {});
    if (r.success) return { value: r.data };
    const i = r.error.issues[0]!;
    const field = i.path.length ? i.path.join('.') : (httpPart ?? 'request');
    return { error: new ApiError('AUDIT_ERR_VALIDATION', `${field}: ${i.message}`) };
  };
}

/** zod → JSON Schema for @fastify/swagger (request parts only; answers are described in API.md). */
function toJsonSchema(s: unknown): unknown {
  return s instanceof z.ZodType
    ? z.toJSONSchema(s, { io: 'input', target: 'openapi-3.0', unrepresentable: 'any' })
    : s;
}

/** Builds the API (no listening, no side effects): tests drive it with inject(). */
export async function buildApi(config: ApiConfig, deps: ApiDeps): Promise<FastifyInstance> {
  const now = deps.now ?? Date.now;
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }) as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    routerOptions: { maxParamLength: 300 },
    ajv: undefined,
  });
  const table: RegisteredRoute[] = [];
  app.decorate('routeTable', table);
  app.addHook('onRoute', (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) {
      if (m === 'HEAD') continue;
      table.push({ method: m, url: r.url, scope: r.config?.scope, audit: r.config?.audit ?? false });
    }
  });
  app.setValidatorCompiler(zodValidator);
  app.decorateRequest('principal', undefined);
  app.decorateRequest('auditNote', undefined as unknown as AuditNote);
  app.decorateRequest('startedAt', 0);

  await app.register(fastifyCookie);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'mcp-audit analyst API',
        version: '1',
        description: 'Events, sessions, clients, alerts and triage. See services/api/API.md.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
    transform: ({ schema, url }) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries((schema ?? {}) as Record<string, unknown>))
        out[k] = toJsonSchema(v);
      if (!url.startsWith('/api/v1/')) out.hide = true;
      return { schema: out as never, url };
    },
  });

  const headers = securityHeaders({ hsts: config.cookieSecure });
  const sessions = createSessionStore({ idleMs: config.sessionIdleMs, maxMs: config.sessionMaxMs, now });
  const keyLimiter = createRateLimiter({ ...perMinute(config.rateLimitPerMinute), now });
  const addressLimiter = createRateLimiter({ ...perMinute(config.addressRateLimitPerMinute), now });
  const authFailures = createRateLimiter({ ...perMinute(config.authFailuresPerMinute), now });
  const limited = (ms: number) =>
    new ApiError('AUDIT_ERR_RATE_LIMITED', 'too many requests; retry later', {
      retryAfter: Math.ceil(ms / 1000),
    });

  app.addHook('onRequest', async (req, reply) => {
    req.startedAt = now();
    req.auditNote = {};
    reply.headers(headers);
    if (req.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
    if (!hostAllowed(req.headers.host, config.allowedHosts))
      throw new ApiError('AUDIT_ERR_FORBIDDEN', 'host not allowed');
    const origin = req.headers.origin;
    if (
      origin !== undefined &&
      !originAllowed(origin, req.headers.host, config.allowedOrigins, config.allowedHosts)
    )
      throw new ApiError('AUDIT_ERR_FORBIDDEN', 'origin not allowed');
    const wait = addressLimiter.take(req.ip);
    if (wait > 0) throw limited(wait);
    const scope = req.routeOptions.config?.scope;
    if (scope === undefined || scope === 'public') return;
    // A blocked address is refused before its key is even looked at.
    const failWait = authFailures.peek(req.ip);
    if (failWait > 0) throw limited(failWait);
    const principal = authenticate(req);
    if (scope === 'session') {
      req.principal = principal;
      return;
    }
    if (!principal) {
      authFailures.take(req.ip);
      throw new ApiError(
        'AUDIT_ERR_UNAUTHENTICATED',
        'an API key (Authorization: Bearer) or a session is required',
      );
    }
    req.principal = principal;
    if (principal.via === 'session' && !SAFE_METHODS.has(req.method)) {
      const s = sessions.get(req.cookies[SESSION_COOKIE]);
      if (!s || !csrfMatches(s.session.csrf, req.headers['x-csrf-token']))
        throw new ApiError('AUDIT_ERR_FORBIDDEN', 'X-CSRF-Token missing or wrong');
    }
    if (!grants(principal.scopes, scope))
      throw new ApiError('AUDIT_ERR_FORBIDDEN', `this route needs the ${scope} scope`);
    const kw = keyLimiter.take(principal.keyId);
    if (kw > 0) throw limited(kw);
  });

  /** The key or the session cookie of a request; a key that is presented but wrong is a 401. */
  function authenticate(req: FastifyRequest): Principal | undefined {
    const presented = presentedCredential(req.headers);
    if (presented.malformed) {
      authFailures.take(req.ip);
      throw new ApiError('AUDIT_ERR_UNAUTHENTICATED', 'Authorization must be "Bearer <key>"');
    }
    if (presented.key !== undefined) {
      const v = deps.keys.verify(presented.key);
      if (!v.ok) {
        authFailures.take(req.ip);
        throw new ApiError('AUDIT_ERR_UNAUTHENTICATED', 'unknown or revoked key');
      }
      return { keyId: v.credential.id, scopes: v.credential.scopes, via: 'key' };
    }
    const token = req.cookies[SESSION_COOKIE];
    if (token === undefined) return undefined;
    const s = sessions.get(token);
    if (!s) return undefined;
    // The key behind a session is checked on every request: revoking it ends the session.
    const key = deps.keys.byId(s.session.keyId);
    if (!key) {
      sessions.destroy(token);
      return undefined;
    }
    return { keyId: key.id, scopes: key.scopes, via: 'session' };
  }

  // The access log: one row per audited request, stored before the answer leaves. If it cannot be
  // stored, the answer is replaced by a 503 and carries no data.
  app.addHook('onSend', async (req, reply, payload) => {
    if (!req.routeOptions.config?.audit) return payload;
    if (reply.statusCode === 429) return payload;
    const row = accessRow(req, reply.statusCode, 'response');
    try {
      await deps.accessLog.write(row);
    } catch (err) {
      req.log.error({ err }, 'access log write failed: answer withheld');
      if (payload instanceof Readable) payload.destroy();
      reply.code(503).type('application/json; charset=utf-8');
      reply.removeHeader('content-disposition');
      reply.removeHeader('x-row-cap-reached');
      return JSON.stringify(
        errorBody('AUDIT_ERR_AUDIT_LOG', 'the access log could not be written; nothing is returned'),
      );
    }
    return payload;
  });

  function accessRow(req: FastifyRequest, status: number, phase: string): AccessLogRow {
    const t = now();
    const n = req.auditNote ?? {};
    let filters = '';
    try {
      filters = JSON.stringify(n.filters ?? req.query ?? {}).slice(0, 16_384);
    } catch {
      filters = '';
    }
    const ua = req.headers['user-agent'];
    return {
      at: new Date(t).toISOString().slice(0, 19).replace('T', ' '),
      at_ms: t,
      request_id: String(req.id),
      key_id: req.principal?.keyId ?? '',
      scopes: [...(req.principal?.scopes ?? [])],
      auth: req.principal?.via ?? 'none',
      route: req.routeOptions.url ?? '',
      method: req.method,
      filters,
      from_ms: n.range?.from ?? 0,
      to_ms: n.range?.to ?? 0,
      rows: n.rows ?? 0,
      status,
      duration_ms: Math.max(0, t - req.startedAt),
      ip: req.ip,
      user_agent: typeof ua === 'string' ? ua.slice(0, 512) : '',
      phase,
    };
  }

  app.setErrorHandler((err: FastifyError | ApiError | Error, req, reply) => {
    const { status, code, message, retryAfter } = classify(err);
    if (status >= 500) req.log.error({ err }, 'request failed');
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
    reply.code(status).type('application/json; charset=utf-8').send(errorBody(code, message));
  });
  app.setNotFoundHandler((req, reply) => {
    reply.headers(headers);
    reply.code(404).send(errorBody('AUDIT_ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
  });

  const triage = createTriage({
    writer: deps.writer,
    producer: deps.producer,
    alertsTopic: config.alertsTopic,
    now,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/api/docs', staticCSP: false });
  registerRoutes(app, { config, deps, sessions, triage, accessRow, now, authFailures, limited });
  registerComplianceRoutes(app, deps.compliance);
  registerIncidentRoutes(app, { reader: deps.reader, maxRangeDays: config.maxRangeDays, now });
  registerConsole(app, config);
  app.get('/api/v1/openapi.json', { config: { scope: 'public', audit: false }, schema: { hide: true } }, () =>
    app.swagger(),
  );
  return app;
}

function classify(err: unknown): {
  status: number;
  code: ApiErrorCode;
  message: string;
  retryAfter?: number;
} {
  if (err instanceof ApiError)
    return { status: err.status, code: err.code, message: err.message, retryAfter: err.retryAfter };
  const limit = queryLimitOf(clickHouseErrorCode(err));
  if (limit)
    return {
      status: 422,
      code: 'AUDIT_ERR_QUERY_LIMIT',
      message: `the query hit the ClickHouse limit on ${limit}; narrow the time range or add filters`,
    };
  if (err instanceof ClickHouseRequestError)
    return {
      status: 503,
      code: 'AUDIT_ERR_UNAVAILABLE',
      message: 'ClickHouse is unavailable or refused the query',
    };
  const e = err as FastifyError;
  if ((e as { code?: string }).code === 'AUDIT_ERR_KAFKA_UNAVAILABLE')
    return { status: 503, code: 'AUDIT_ERR_UNAVAILABLE', message: 'Kafka is unavailable' };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'AUDIT_ERR_BODY_TOO_LARGE', message: 'body too large' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'AUDIT_ERR_UNSUPPORTED_MEDIA_TYPE', message: 'send application/json' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, code: 'AUDIT_ERR_VALIDATION', message: `body: ${e.message}` };
  }
  if (e.statusCode === 400 || e instanceof SyntaxError)
    return { status: 400, code: 'AUDIT_ERR_VALIDATION', message: e.message };
  if (e.statusCode === 404) return { status: 404, code: 'AUDIT_ERR_NOT_FOUND', message: e.message };
  return { status: 500, code: 'AUDIT_ERR_INTERNAL', message: 'internal error' };
}

const MISSING_CONSOLE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mcp-audit console not built</title></head>
<body><h1>The console is not built</h1><p>The API is up (<a href="/api/docs">API reference</a>), but the console's
static build is missing. Build it with <code>npm run build:console -w services/api</code>.</p></body></html>`;

/** The console: index.html for its client-side routes, /assets/ from its build, a 503 page without a build. */
function registerConsole(app: FastifyInstance, config: ApiConfig): void {
  const dir = config.consoleDir;
  const index = dir ? joinPath(dir, 'index.html') : undefined;
  const cfg = { scope: 'public' as const, audit: false };
  const page = async (_req: FastifyRequest, reply: FastifyReply) => {
    reply.header('cache-control', 'no-cache');
    if (index) {
      try {
        const html = await readFile(index);
        return reply.type('text/html; charset=utf-8').send(html);
      } catch {
        // fall through to the 503 page
      }
    }
    return reply.code(503).type('text/html; charset=utf-8').send(MISSING_CONSOLE);
  };
  for (const url of CONSOLE_ROUTES) app.get(url, { config: cfg, schema: { hide: true } }, page);
  const assets = dir ? joinPath(dir, 'assets') : undefined;
  if (assets && existsSync(assets)) {
    void app.register(fastifyStatic, {
      root: assets,
      prefix: '/assets/',
      decorateReply: false,
      index: false,
      dotfiles: 'deny',
      immutable: true,
      maxAge: '365d',
    });
  } else {
    app.get('/assets/*', { config: cfg, schema: { hide: true } }, async (_req, reply) =>
      reply.code(503).send(errorBody('AUDIT_ERR_UNAVAILABLE', 'the console is not built')),
    );
  }
}

export type RouteContext = Parameters<typeof registerRoutes>[1];
