import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  isInitializeRequest,
  isJSONRPCRequest,
  type JSONRPCRequest,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { Logger, Registry } from '@mcp-audit/observability';
import { cleanText, normalizeIp, traceIdOf, type AuditEmitter } from './audit-events.js';
import { presentedCredential, type ClientIdentity, type KeyStore } from './client-keys.js';
import type { GatewayFile, UpstreamConfig } from './config.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js';
import { ProxySession, RPC_RATE_LIMITED, RPC_UPSTREAM_UNAVAILABLE } from './mcp-proxy.js';
import { createRateLimiter, type RateLimiter } from './rate-limiter.js';
import type { ToolGuard } from './tool-guard.js';
import type { UpstreamConnector } from './upstreams.js';

export interface GatewayConfig {
  file: GatewayFile;
  /** Base URL clients reach the gateway at (RFC 9728 `resource`), without a trailing slash. */
  publicUrl: string;
}

export interface GatewayDeps {
  keys: KeyStore;
  guard: ToolGuard;
  emit: AuditEmitter['emit'];
  connect: UpstreamConnector;
  log: Logger;
  registry: Registry;
  metrics?: GatewayMetrics;
  now?: () => number;
}

declare module 'fastify' {
  interface FastifyRequest {
    identity?: ClientIdentity;
  }
}

const RPC_UNAUTHORIZED = -32001;

export interface HttpSession {
  proxy: ProxySession;
  transport: StreamableHTTPServerTransport;
}
const approveBody = z.strictObject({ upstream: z.string().min(1), tool: z.string().min(1) });

/**
 * The HTTP front: MCP clients speak Streamable HTTP to `/mcp/<upstream>`; each session is bridged
 * to its own upstream session by a ProxySession. Admin routes (scope `admin`) list tool
 * definitions and re-approve changed ones. No side effects until `start()`; `listen` is main's job.
 */
export function buildGateway(cfg: GatewayConfig, deps: GatewayDeps) {
  const now = deps.now ?? Date.now;
  const log = deps.log.child({ component: 'gateway' });
  const metrics = deps.metrics ?? createGatewayMetrics(deps.registry);
  const upstreams = new Map(cfg.file.upstreams.map((u) => [u.name, u]));
  const sessions = new Map<string, HttpSession>();
  const clientLimiter: RateLimiter = createRateLimiter({
    perSecond: cfg.file.rate_limit.per_second,
    burst: cfg.file.rate_limit.burst,
    now,
  });
  const authFailLimiter = createRateLimiter({
    perSecond: cfg.file.rate_limit.auth_failures_per_minute / 60,
    burst: cfg.file.rate_limit.auth_failures_per_minute,
    now,
  });
  let closing = false;
  let sweeper: NodeJS.Timeout | undefined;
  // Sessions being set up (upstream starting), counted against max_sessions too.
  let opening = 0;

  const app = Fastify({
    loggerInstance: log,
    bodyLimit: cfg.file.limits.body_bytes,
    disableRequestLogging: true,
    trustProxy: false,
    forceCloseConnections: true,
    // SSE streams stay open as long as a session wants; idle sessions are swept instead.
    requestTimeout: 0,
  });

  const metadataUrl = (upstream: string | undefined) =>
    `${cfg.publicUrl}/.well-known/oauth-protected-resource${upstream ? `/mcp/${upstream}` : ''}`;

  const protectedResource = (upstream: string | undefined) => ({
    resource: upstream ? `${cfg.publicUrl}/mcp/${upstream}` : cfg.publicUrl,
    ...(cfg.file.authorization_servers.length > 0
      ? { authorization_servers: cfg.file.authorization_servers }
      : {}),
    bearer_methods_supported: ['header'],
    resource_name: upstream ? `mcp-audit gateway: ${upstream}` : 'mcp-audit gateway',
  });

  app.get('/.well-known/oauth-protected-resource', async () => protectedResource(undefined));
  app.get<{ Params: { upstream: string } }>(
    '/.well-known/oauth-protected-resource/mcp/:upstream',
    async (req, reply) =>
      upstreams.has(req.params.upstream)
        ? protectedResource(req.params.upstream)
        : reply.code(404).send({ error: 'AUDIT_ERR_NOT_FOUND', message: 'no such upstream' }),
  );

  const requestMeta = (req: FastifyRequest) => ({
    ip: normalizeIp(req.ip),
    userAgent: cleanText(req.headers['user-agent']),
    traceId: traceIdOf(req.headers.traceparent),
  });

  /** Authentication for MCP and admin routes; answers 401/403/429 itself and audits the failure. */
  async function authenticate(
    req: FastifyRequest,
    reply: FastifyReply,
    scope: 'mcp' | 'admin',
    upstream: UpstreamConfig | undefined,
  ): Promise<ClientIdentity | undefined> {
    const meta = requestMeta(req);
    const presented = presentedCredential(req.headers);
    const v = presented.malformed
      ? ({ ok: false, reason: 'malformed_credential' } as const)
      : deps.keys.verify(presented.key);
    const server = upstream
      ? { name: upstream.name, transport: upstream.transport }
      : { name: 'gateway', transport: 'http' as const };
    if (!v.ok) {
      metrics.authFailures.inc({ reason: v.reason });
      const throttled = !authFailLimiter.take(`ip:${meta.ip ?? 'unknown'}`).ok;
      const status = throttled ? 429 : 401;
      deps.emit({
        ts: new Date(now()).toISOString(),
        kind: 'auth',
        method: `http:${req.method}`,
        client: { id: 'unauthenticated', ip: meta.ip, user_agent: meta.userAgent },
        server,
        outcome: 'auth_failed',
        http_status: status,
        auth: {
          method: presented.key || presented.malformed ? 'api_key' : 'none',
          result: 'failure',
          reason: v.reason,
        },
        trace_id: meta.traceId,
        error: { code: 'AUDIT_ERR_UNAUTHENTICATED', message: v.reason },
        duration_ms: 0,
        request_bytes: Number(req.headers['content-length'] ?? 0) || 0,
        response_bytes: 0,
        labels: { path: req.routeOptions.url ?? 'unknown', ...(throttled ? { throttled: 'true' } : {}) },
      });
      const challenge = [`Bearer resource_metadata="${metadataUrl(upstream?.name)}"`];
      if (v.reason !== 'missing_credential')
        challenge.push(`error="invalid_token"`, `error_description="the credential is not valid"`);
      if (throttled) reply.header('retry-after', '60');
      await reply
        .code(status)
        .header('www-authenticate', challenge.join(', '))
        .send({
          jsonrpc: '2.0',
          id: null,
          error: {
            code: RPC_UNAUTHORIZED,
            message:
              v.reason === 'missing_credential'
                ? 'authentication required: send Authorization: Bearer <api key>'
                : 'invalid credential',
          },
        });
      return undefined;
    }
    const id = v.identity;
    const lacksScope = !id.scopes.includes(scope);
    const notAllowed =
      upstream !== undefined && id.upstreams !== undefined && !id.upstreams.includes(upstream.name);
    if (lacksScope || notAllowed) {
      const reason = lacksScope ? `missing_scope_${scope}` : 'upstream_not_allowed';
      deps.emit({
        ts: new Date(now()).toISOString(),
        kind: 'auth',
        method: `http:${req.method}`,
        client: { id: id.clientId, user: id.user, name: id.name, ip: meta.ip, user_agent: meta.userAgent },
        server,
        outcome: 'denied',
        http_status: 403,
        auth: { method: 'api_key', result: 'success', reason },
        trace_id: meta.traceId,
        error: { code: 'AUDIT_ERR_FORBIDDEN', message: reason },
        duration_ms: 0,
        request_bytes: Number(req.headers['content-length'] ?? 0) || 0,
        response_bytes: 0,
      });
      await reply
        .code(403)
        .header(
          'www-authenticate',
          `Bearer resource_metadata="${metadataUrl(upstream?.name)}", error="insufficient_scope", scope="${scope}"`,
        )
        .send({
          jsonrpc: '2.0',
          id: null,
          error: { code: RPC_UNAUTHORIZED, message: `forbidden: ${reason}` },
        });
      return undefined;
    }
    return id;
  }

  const rpcError = (reply: FastifyReply, status: number, code: number, message: string) =>
    reply.code(status).send({ jsonrpc: '2.0', id: null, error: { code, message } });

  /** Take one token per request in a POST; on refusal every request in it is audited as denied. */
  function admitRequests(
    identity: ClientIdentity,
    requests: JSONRPCRequest[],
  ): { ok: true } | { ok: false; retryAfterMs: number } {
    for (let i = 0; i < requests.length; i++) {
      const r = clientLimiter.take(identity.clientId);
      if (!r.ok) return r;
    }
    return { ok: true };
  }

  async function handleMcp(req: FastifyRequest<{ Params: { upstream: string } }>, reply: FastifyReply) {
    if (closing)
      return rpcError(
        reply.header('retry-after', '5'),
        503,
        RPC_UPSTREAM_UNAVAILABLE,
        'gateway is shutting down',
      );
    const upstream = upstreams.get(req.params.upstream);
    const identity = await authenticate(req, reply, 'mcp', upstream);
    if (!identity) return reply;
    if (!upstream) return rpcError(reply, 404, -32600, `no upstream named "${req.params.upstream}"`);
    const sid = req.headers['mcp-session-id'];
    const body = req.method === 'POST' ? (req.body as unknown) : undefined;
    const messages = body === undefined ? [] : Array.isArray(body) ? (body as unknown[]) : [body];
    const requests = messages.filter(isJSONRPCRequest);

    let open: HttpSession | undefined;
    if (typeof sid === 'string') {
      open = sessions.get(sid);
      const session = open?.proxy;
      // A session belongs to the client that opened it and to one upstream; anything else is
      // answered as the SDK answers an unknown session, so ids cannot be probed.
      if (!session || session.upstream.name !== upstream.name || session.clientId !== identity.clientId) {
        if (session)
          log.warn({ client: identity.clientId, owner: session.clientId }, 'session used by another client');
        return rpcError(reply, 404, -32001, 'Session not found');
      }
    }
    const session = open?.proxy;

    if (requests.length > 0) {
      const admitted = admitRequests(identity, requests);
      if (!admitted.ok) {
        const message = `rate limit exceeded; retry in ${Math.ceil(admitted.retryAfterMs / 1000)}s`;
        const meta = requestMeta(req);
        for (const r of requests) {
          if (session) session.auditRefusal(r, 'rate_limited', message, { httpStatus: 429 });
          else
            deps.emit({
              ts: new Date(now()).toISOString(),
              kind: 'session',
              method: r.method,
              client: {
                id: identity.clientId,
                user: identity.user,
                name: identity.name,
                ip: meta.ip,
                user_agent: meta.userAgent,
              },
              server: { name: upstream.name, transport: upstream.transport },
              outcome: 'denied',
              http_status: 429,
              rpc_error_code: RPC_RATE_LIMITED,
              auth: { method: 'api_key', result: 'success' },
              error: { code: 'rate_limited', message },
              duration_ms: 0,
              request_bytes: Buffer.byteLength(JSON.stringify(r)),
              response_bytes: 0,
              labels: { refused_by: 'gateway' },
            });
        }
        metrics.requests.inc(
          { upstream: upstream.name, method: 'other', outcome: 'denied' },
          requests.length,
        );
        return reply
          .code(429)
          .header('retry-after', String(Math.max(1, Math.ceil(admitted.retryAfterMs / 1000))))
          .send({
            jsonrpc: '2.0',
            id: requests.length === 1 ? requests[0]!.id : null,
            error: { code: RPC_RATE_LIMITED, message },
          });
      }
    }

    if (open) {
      reply.hijack();
      await open.transport.handleRequest(req.raw, reply.raw, body);
      return reply;
    }
    if (req.method !== 'POST' || !messages.some(isInitializeRequest))
      return rpcError(reply, 400, -32000, 'Bad Request: No valid session ID provided');
    if (sessions.size + opening >= cfg.file.limits.max_sessions) {
      const message = `too many open sessions (limits.max_sessions = ${cfg.file.limits.max_sessions})`;
      await rpcError(reply.header('retry-after', '30'), 503, RPC_UPSTREAM_UNAVAILABLE, message);
      const meta = requestMeta(req);
      for (const r of requests)
        deps.emit({
          ts: new Date(now()).toISOString(),
          kind: 'session',
          method: r.method,
          client: {
            id: identity.clientId,
            user: identity.user,
            name: identity.name,
            ip: meta.ip,
            user_agent: meta.userAgent,
          },
          server: { name: upstream.name, transport: upstream.transport },
          outcome: 'denied',
          http_status: 503,
          rpc_error_code: RPC_UPSTREAM_UNAVAILABLE,
          auth: { method: 'api_key', result: 'success' },
          trace_id: meta.traceId,
          error: { code: 'too_many_sessions', message },
          duration_ms: 0,
          request_bytes: Buffer.byteLength(JSON.stringify(r)),
          response_bytes: 0,
          labels: { refused_by: 'gateway' },
        });
      metrics.requests.inc(
        { upstream: upstream.name, method: 'initialize', outcome: 'denied' },
        requests.length,
      );
      return reply;
    }

    // A new session: start its own upstream session first, so the initialize request has somewhere to go.
    const meta = requestMeta(req);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      onsessioninitialized: (id) => {
        sessions.set(id, { proxy, transport });
      },
    });
    const proxy = new ProxySession({
      upstream,
      upstreamTransport: deps.connect(upstream),
      downstream: transport,
      ctx: { identity, ip: meta.ip, userAgent: meta.userAgent, traceId: meta.traceId, downstream: 'http' },
      deps: { emit: deps.emit, guard: deps.guard, metrics, log, now },
    });
    proxy.onclose = () => {
      if (proxy.sessionId) sessions.delete(proxy.sessionId);
    };
    opening += 1;
    try {
      await proxy.start();
    } catch (err) {
      log.error({ err, upstream: upstream.name }, 'could not start the upstream session');
      const message = `upstream "${upstream.name}" is unavailable`;
      for (const r of requests) proxy.auditRefusal(r, 'upstream_unavailable', message, { httpStatus: 502 });
      await proxy.close('upstream failed to start');
      return rpcError(reply, 502, RPC_UPSTREAM_UNAVAILABLE, message);
    } finally {
      opening -= 1;
    }
    reply.hijack();
    await transport.handleRequest(req.raw, reply.raw, body);
    // The SDK refused the initialize (bad protocol version, batch, ...): no session came of it.
    if (!transport.sessionId) await proxy.close('initialize refused');
    return reply;
  }

  app.register(async (scope) => {
    scope.post('/mcp/:upstream', handleMcp);
    scope.get('/mcp/:upstream', handleMcp);
    scope.delete('/mcp/:upstream', handleMcp);

    scope.get('/admin/tools', async (req, reply) => {
      const id = await authenticate(req, reply, 'admin', undefined);
      if (!id) return reply;
      return {
        guard: deps.guard.enabled,
        tools: deps.guard
          .entries()
          .map((e) => ({ ...e, blocked: deps.guard.enabled && e.current_hash !== e.approved_hash })),
      };
    });

    scope.post('/admin/tools/approve', async (req, reply) => {
      const id = await authenticate(req, reply, 'admin', undefined);
      if (!id) return reply;
      const parsed = approveBody.safeParse(req.body);
      if (!parsed.success)
        return reply.code(400).send({
          error: 'AUDIT_ERR_INVALID_REQUEST',
          message: parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '),
        });
      const { upstream, tool } = parsed.data;
      const before = deps.guard.entries().find((e) => e.upstream === upstream && e.tool === tool);
      const entry = deps.guard.approve(upstream, tool, id.clientId);
      if (!entry || !before)
        return reply.code(404).send({
          error: 'AUDIT_ERR_NOT_FOUND',
          message: `no tool "${tool}" seen on upstream "${upstream}"`,
        });
      const meta = requestMeta(req);
      log.warn({ upstream, tool, hash: entry.approved_hash, by: id.clientId }, 'tool definition approved');
      const u = upstreams.get(upstream);
      deps.emit({
        ts: new Date(now()).toISOString(),
        kind: 'tool_list',
        method: 'admin/tools/approve',
        client: { id: id.clientId, user: id.user, name: id.name, ip: meta.ip, user_agent: meta.userAgent },
        server: { name: upstream, transport: u?.transport ?? 'http' },
        tool: { name: tool, definition_hash: entry.approved_hash },
        outcome: 'ok',
        http_status: 200,
        auth: { method: 'api_key', result: 'success' },
        duration_ms: 0,
        request_bytes: 0,
        response_bytes: 0,
        labels: { change: 'approved', previous_approved_hash: before.approved_hash },
      });
      return { approved: entry };
    });
  });

  /** Close sessions silent for longer than `limits.session_idle_ms` (and their upstream sessions). */
  async function sweep(): Promise<number> {
    const cutoff = now() - cfg.file.limits.session_idle_ms;
    const idle = [...sessions.values()].filter((s) => s.proxy.lastActivity < cutoff);
    for (const s of idle) await s.proxy.close('idle');
    if (idle.length > 0) log.info({ closed: idle.length }, 'idle sessions closed');
    return idle.length;
  }

  return {
    app,
    sessions,
    sweep,
    async start() {
      sweeper = setInterval(() => void sweep(), Math.min(60_000, cfg.file.limits.session_idle_ms));
      sweeper.unref();
    },
    /** Refuse new requests, close HTTP, then close every session (and its upstream). */
    async stop() {
      closing = true;
      if (sweeper) clearInterval(sweeper);
      await Promise.allSettled([...sessions.values()].map((s) => s.proxy.close('gateway stopping')));
      await app.close();
    },
    health() {
      return { ok: !closing, details: { sessions: sessions.size, upstreams: upstreams.size } };
    },
  };
}

export type Gateway = ReturnType<typeof buildGateway>;

/** Ops port: liveness/readiness and Prometheus metrics, apart from the client-facing port. */
export function buildOpsServer(deps: {
  health: () => { ok: boolean; details: Record<string, unknown> };
  registry: Registry;
  log: Logger;
}) {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'ops' }),
    bodyLimit: 1024,
    disableRequestLogging: true,
  });
  const health = async (_req: FastifyRequest, reply: FastifyReply) => {
    const h = deps.health();
    return reply.code(h.ok ? 200 : 503).send({ status: h.ok ? 'ok' : 'unhealthy', ...h.details });
  };
  app.get('/health', health);
  app.get('/healthz', health);
  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', deps.registry.contentType).send(await deps.registry.metrics()),
  );
  return app;
}
