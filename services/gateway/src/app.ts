import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  isInitializeRequest,
  isJSONRPCRequest,
  type JSONRPCRequest,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { Logger, Registry } from '@mcp-audit/service-kit';
import {
  cleanText,
  defaultTextRedactor,
  kindOf,
  normalizeIp,
  requestNames,
  traceIdOf,
  wellFormedValue,
  type AuditEmitter,
  type EventDraft,
  type TextRedactor,
} from './audit-events.js';
import { presentedCredential, type ClientIdentity, type KeyStore } from './client-keys.js';
import type { GatewayFile, UpstreamConfig } from './config.js';
import { createGatewayMetrics, methodLabel, type GatewayMetrics } from './metrics.js';
import { ProxySession, RPC_RATE_LIMITED, RPC_UPSTREAM_UNAVAILABLE, requestFields } from './mcp-proxy.js';
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
  /** The emitter's redactor, for identifiers the gateway must cut to the event's limits itself. */
  redactor?: TextRedactor;
  now?: () => number;
}

declare module 'fastify' {
  interface FastifyRequest {
    identity?: ClientIdentity;
  }
}

const RPC_UNAUTHORIZED = -32001;
/** What the SDK's transport answers for an unknown session; the gateway answers the same. */
const RPC_SESSION_NOT_FOUND = -32001;
const RPC_INVALID_REQUEST = -32600;
const RPC_PARSE_ERROR = -32700;
const RPC_INTERNAL_ERROR = -32603;
/**
 * Requests of one refused POST audited one by one. The SDK's transport takes at most 100 per
 * batch (MAX_BATCH_SIZE), so this is every request of any batch it would have accepted; a larger
 * one is audited by its first 100, labelled with its size.
 */
const MAX_AUDITED_PER_POST = 100;

export interface HttpSession {
  proxy: ProxySession;
  transport: StreamableHTTPServerTransport;
}
const approveBody = z.strictObject({
  upstream: z.string().min(1),
  tool: z.string().min(1),
  /** The `current_hash` the operator reviewed (GET /admin/tools); refused with 409 once it is not current. */
  definition_hash: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be a current_hash from GET /admin/tools (64 lowercase hex)')
    .optional(),
});

/** fastify's own refusals before a handler runs (body parsing), as the gateway audits and answers them. */
const BODY_ERRORS: Record<string, { code: string; message: string; rpc: number }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: 'body_too_large',
    message: 'request body exceeds limits.body_bytes',
    rpc: RPC_INVALID_REQUEST,
  },
  FST_ERR_CTP_INVALID_JSON_BODY: {
    code: 'invalid_json',
    message: 'Parse error: Invalid JSON',
    rpc: RPC_PARSE_ERROR,
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: 'invalid_json',
    message: 'Parse error: empty JSON body',
    rpc: RPC_PARSE_ERROR,
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'unsupported_media_type',
    message: 'Unsupported Media Type: Content-Type must be application/json',
    rpc: RPC_INVALID_REQUEST,
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: 'invalid_content_length',
    message: 'request body size did not match Content-Length',
    rpc: RPC_INVALID_REQUEST,
  },
};

/** A request the gateway (or the MCP transport inside it) answered without forwarding. */
interface Refusal {
  status: number;
  outcome: 'denied' | 'error';
  /** `error.code` of the event: stable, for queries and detectors. */
  code: string;
  /** `error.message` of the event; also what the client is told unless `clientMessage` is set. */
  message: string;
  /** What the client is told, when it must learn less than the event records (session probing). */
  clientMessage?: string;
  rpcCode?: number | undefined;
  upstream?: UpstreamConfig | undefined;
  sessionId?: string | undefined;
  labels?: Record<string, string>;
}

/**
 * The HTTP front: MCP clients speak Streamable HTTP to `/mcp/<upstream>`; each session is bridged
 * to its own upstream session by a ProxySession. Admin routes (scope `admin`) list tool
 * definitions and re-approve changed ones. No side effects until `start()`; `listen` is main's job.
 */
export function buildGateway(cfg: GatewayConfig, deps: GatewayDeps) {
  const now = deps.now ?? Date.now;
  const log = deps.log.child({ component: 'gateway' });
  const metrics = deps.metrics ?? createGatewayMetrics(deps.registry);
  const redactor = deps.redactor ?? defaultTextRedactor;
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

  // RFC 9728 metadata of an API-key protected resource: no `authorization_servers`, because the
  // gateway is no OAuth resource server (config.ts refuses them; README: Authentication).
  const protectedResource = (upstream: string | undefined) => ({
    resource: upstream ? `${cfg.publicUrl}/mcp/${upstream}` : cfg.publicUrl,
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

  /**
   * Authentication for MCP and admin routes, run in their onRequest hook (before the body is read,
   * so a stranger's body is never parsed); answers 401/403/429 itself and audits the failure.
   */
  function authenticate(
    req: FastifyRequest,
    reply: FastifyReply,
    scope: 'mcp' | 'admin',
    upstream: UpstreamConfig | undefined,
  ): ClientIdentity | undefined {
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
      void reply
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
      void reply
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

  const identityClient = (req: FastifyRequest, sessionId?: string): EventDraft['client'] => {
    const meta = requestMeta(req);
    const id = req.identity;
    return {
      id: id?.clientId ?? 'unauthenticated',
      user: id?.user,
      name: id?.name,
      ip: meta.ip,
      user_agent: meta.userAgent,
      session_id: cleanText(sessionId),
    };
  };

  /**
   * Audit a refused HTTP request: one event per JSON-RPC request in its body (the first
   * MAX_AUDITED_PER_POST), or one for the HTTP request itself when it carries none (GET, DELETE,
   * notifications only, a body that never parsed). The response size rides on the first event.
   */
  function auditRefused(
    req: FastifyRequest,
    r: Refusal,
    messages: readonly unknown[],
    responseBytes: number,
  ) {
    const meta = requestMeta(req);
    const requests = messages.filter(isJSONRPCRequest);
    const base = {
      ts: new Date(now()).toISOString(),
      client: identityClient(req, r.sessionId),
      server: r.upstream
        ? { name: r.upstream.name, transport: r.upstream.transport }
        : { name: 'gateway', transport: 'http' as const },
      outcome: r.outcome,
      http_status: r.status,
      rpc_error_code: r.rpcCode,
      ...(req.identity ? { auth: { method: 'api_key' as const, result: 'success' as const } } : {}),
      trace_id: meta.traceId,
      error: { code: r.code, message: r.message },
      duration_ms: 0,
      labels: {
        refused_by: 'gateway',
        http_method: req.method,
        ...r.labels,
        ...(requests.length > MAX_AUDITED_PER_POST
          ? { batch_requests: String(requests.length), batch_audited: String(MAX_AUDITED_PER_POST) }
          : {}),
      },
    };
    const metric = { upstream: r.upstream?.name ?? 'unknown', outcome: r.outcome };
    if (requests.length === 0) {
      deps.emit({
        ...base,
        kind: 'session',
        method: `http:${req.method}`,
        request_bytes: Number(req.headers['content-length'] ?? 0) || 0,
        response_bytes: responseBytes,
      });
      metrics.requests.inc({ ...metric, method: 'other' });
      return;
    }
    requests.slice(0, MAX_AUDITED_PER_POST).forEach((m, i) => {
      const { tool, args } = requestFields(m);
      const names = requestNames(m.method, tool, redactor);
      deps.emit({
        ...base,
        kind: kindOf(m.method),
        method: names.method,
        ...(names.tool !== undefined ? { tool: { name: names.tool } } : {}),
        args: args === undefined ? undefined : wellFormedValue(args),
        request_bytes: Buffer.byteLength(JSON.stringify(m)),
        response_bytes: i === 0 ? responseBytes : 0,
        ...(names.labels ? { labels: { ...base.labels, ...names.labels } } : {}),
      });
      metrics.requests.inc({ ...metric, method: methodLabel(m.method) });
    });
  }

  /** Answer an MCP request with a JSON-RPC error of the gateway's own, and audit it. */
  function refuse(req: FastifyRequest, reply: FastifyReply, r: Refusal, messages: readonly unknown[] = []) {
    const requests = messages.filter(isJSONRPCRequest);
    const body = {
      jsonrpc: '2.0',
      id: requests.length === 1 ? requests[0]!.id : null,
      error: { code: r.rpcCode ?? RPC_INVALID_REQUEST, message: r.clientMessage ?? r.message },
    };
    auditRefused(req, { ...r, rpcCode: body.error.code }, messages, Buffer.byteLength(JSON.stringify(body)));
    return reply.code(r.status).send(body);
  }

  /**
   * The SDK's transport answers some requests itself (406 without an acceptable Accept header,
   * 415, a bad protocol version header, a batch over 100, a second initialize): nothing of them
   * reaches the session, so audit them here from the status it wrote.
   */
  function auditTransportRefusal(
    req: FastifyRequest,
    reply: FastifyReply,
    messages: readonly unknown[],
    upstream: UpstreamConfig,
    sessionId: string | undefined,
  ) {
    const status = reply.raw.statusCode;
    if (status < 400) return;
    auditRefused(
      req,
      {
        status,
        outcome: 'error',
        code: 'refused_by_transport',
        message: `the MCP transport answered HTTP ${status} without handing the request on`,
        upstream,
        sessionId,
        labels: { refused_by: 'mcp_transport' },
      },
      messages,
      Number(reply.raw.getHeader('content-length') ?? 0) || 0,
    );
  }

  /** Take one token per request in a POST; on refusal every request in it is audited as denied. */
  function admitRequests(
    identity: ClientIdentity,
    requests: JSONRPCRequest[],
  ): { ok: true } | { ok: false; retryAfterMs: number } {
    for (let i = 0; i < requests.length; i++) {
      const r = clientLimiter.take(identity.clientId, identity.rateLimit);
      if (!r.ok) return r;
    }
    return { ok: true };
  }

  const authHook =
    (scope: 'mcp' | 'admin') =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
      const name = (req.params as { upstream?: string }).upstream;
      const identity = authenticate(req, reply, scope, name === undefined ? undefined : upstreams.get(name));
      if (!identity) return reply;
      req.identity = identity;
      return undefined;
    };

  async function handleMcp(req: FastifyRequest<{ Params: { upstream: string } }>, reply: FastifyReply) {
    const identity = req.identity!;
    const upstream = upstreams.get(req.params.upstream);
    const sid = req.headers['mcp-session-id'];
    const sessionId = typeof sid === 'string' ? sid : undefined;
    const body = req.method === 'POST' ? (req.body as unknown) : undefined;
    const messages = body === undefined ? [] : Array.isArray(body) ? (body as unknown[]) : [body];
    const requests = messages.filter(isJSONRPCRequest);
    if (closing)
      return refuse(
        req,
        reply.header('retry-after', '5'),
        {
          status: 503,
          outcome: 'error',
          code: 'gateway_stopping',
          message: 'gateway is shutting down',
          rpcCode: RPC_UPSTREAM_UNAVAILABLE,
          upstream,
          sessionId,
        },
        messages,
      );
    if (!upstream)
      return refuse(
        req,
        reply,
        {
          status: 404,
          outcome: 'error',
          code: 'unknown_upstream',
          message: `no upstream named "${cleanText(req.params.upstream, 64) ?? ''}"`,
          labels: { requested_upstream: cleanText(req.params.upstream, 64) ?? '' },
          sessionId,
        },
        messages,
      );

    let open: HttpSession | undefined;
    if (sessionId !== undefined) {
      open = sessions.get(sessionId);
      const session = open?.proxy;
      // A session belongs to the client that opened it and to one upstream; anything else is
      // answered as the SDK answers an unknown session, so ids cannot be probed. The event says
      // which it was: a session id under another identity is what session-misuse detection needs.
      if (!session || session.upstream.name !== upstream.name || session.clientId !== identity.clientId) {
        const foreign = session !== undefined && session.clientId !== identity.clientId;
        if (foreign)
          log.warn({ client: identity.clientId, owner: session.clientId }, 'session used by another client');
        return refuse(
          req,
          reply,
          {
            status: 404,
            outcome: foreign ? 'denied' : 'error',
            code: !session
              ? 'unknown_session'
              : foreign
                ? 'session_of_another_client'
                : 'session_of_another_upstream',
            message: !session
              ? 'no open session with this id'
              : foreign
                ? `the session belongs to another client (${session.clientId})`
                : `the session belongs to upstream "${session.upstream.name}"`,
            clientMessage: 'Session not found',
            rpcCode: RPC_SESSION_NOT_FOUND,
            upstream,
            sessionId,
          },
          messages,
        );
      }
    }
    const session = open?.proxy;

    if (requests.length > 0) {
      const admitted = admitRequests(identity, requests);
      if (!admitted.ok) {
        const message = `rate limit exceeded; retry in ${Math.ceil(admitted.retryAfterMs / 1000)}s`;
        reply.header('retry-after', String(Math.max(1, Math.ceil(admitted.retryAfterMs / 1000))));
        if (!session)
          return refuse(
            req,
            reply,
            {
              status: 429,
              outcome: 'denied',
              code: 'rate_limited',
              message,
              rpcCode: RPC_RATE_LIMITED,
              upstream,
            },
            messages,
          );
        for (const r of requests.slice(0, MAX_AUDITED_PER_POST))
          session.auditRefusal(r, 'rate_limited', message, { httpStatus: 429 });
        return reply.code(429).send({
          jsonrpc: '2.0',
          id: requests.length === 1 ? requests[0]!.id : null,
          error: { code: RPC_RATE_LIMITED, message },
        });
      }
    }

    if (open) {
      reply.hijack();
      await open.transport.handleRequest(req.raw, reply.raw, body);
      auditTransportRefusal(req, reply, messages, upstream, sessionId);
      return reply;
    }
    if (req.method !== 'POST' || !messages.some(isInitializeRequest))
      return refuse(
        req,
        reply,
        {
          status: 400,
          outcome: 'error',
          code: 'missing_session',
          message: 'Bad Request: No valid session ID provided',
          rpcCode: -32000,
          upstream,
        },
        messages,
      );
    if (sessions.size + opening >= cfg.file.limits.max_sessions)
      return refuse(
        req,
        reply.header('retry-after', '30'),
        {
          status: 503,
          outcome: 'denied',
          code: 'too_many_sessions',
          message: `too many open sessions (limits.max_sessions = ${cfg.file.limits.max_sessions})`,
          rpcCode: RPC_UPSTREAM_UNAVAILABLE,
          upstream,
        },
        messages,
      );

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
      deps: { emit: deps.emit, guard: deps.guard, metrics, log, redactor, now },
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
    if (!transport.sessionId) {
      auditTransportRefusal(req, reply, messages, upstream, undefined);
      await proxy.close('initialize refused');
    }
    return reply;
  }

  /** Admin actions are audited too, refused ones included (`kind: tool_list`, method admin/...). */
  function auditAdmin(
    req: FastifyRequest,
    e: Pick<EventDraft, 'outcome' | 'http_status' | 'error' | 'labels' | 'tool'> & {
      upstream?: string | undefined;
    },
  ) {
    const known = e.upstream === undefined ? undefined : upstreams.get(e.upstream);
    deps.emit({
      ts: new Date(now()).toISOString(),
      kind: 'tool_list',
      method: `admin${req.routeOptions.url?.replace(/^\/admin/, '') ?? ''}`,
      client: identityClient(req),
      server:
        e.upstream !== undefined && (known || deps.guard.entries().some((t) => t.upstream === e.upstream))
          ? { name: e.upstream, transport: known?.transport ?? 'http' }
          : { name: 'gateway', transport: 'http' },
      ...(e.tool ? { tool: e.tool } : {}),
      outcome: e.outcome,
      http_status: e.http_status,
      ...(req.identity ? { auth: { method: 'api_key' as const, result: 'success' as const } } : {}),
      trace_id: requestMeta(req).traceId,
      error: e.error,
      duration_ms: 0,
      request_bytes: Number(req.headers['content-length'] ?? 0) || 0,
      response_bytes: 0,
      labels: e.labels,
    });
  }

  app.register(async (scope) => {
    scope.route({
      method: ['POST', 'GET', 'DELETE'],
      url: '/mcp/:upstream',
      onRequest: authHook('mcp'),
      handler: handleMcp,
    });

    scope.get('/admin/tools', { onRequest: authHook('admin') }, async () => ({
      guard: deps.guard.enabled,
      tools: deps.guard
        .entries()
        .map((e) => ({ ...e, blocked: deps.guard.enabled && e.current_hash !== e.approved_hash })),
    }));

    scope.post('/admin/tools/approve', { onRequest: authHook('admin') }, async (req, reply) => {
      const id = req.identity!;
      const parsed = approveBody.safeParse(req.body);
      if (!parsed.success) {
        const message = parsed.error.issues
          .map((i) => `${i.path.join('.') || 'body'}: ${i.message}`)
          .join('; ');
        auditAdmin(req, { outcome: 'error', http_status: 400, error: { code: 'invalid_request', message } });
        return reply.code(400).send({ error: 'AUDIT_ERR_INVALID_REQUEST', message });
      }
      const { upstream, tool, definition_hash: requested } = parsed.data;
      const toolName = cleanText(tool) ?? '(missing)';
      const result = deps.guard.approve(upstream, tool, id.clientId, requested);
      if (!result.ok && result.reason === 'not_found') {
        const message = `no tool "${toolName}" seen on upstream "${cleanText(upstream) ?? ''}"`;
        auditAdmin(req, {
          upstream,
          tool: { name: toolName },
          outcome: 'error',
          http_status: 404,
          error: { code: 'unknown_tool', message },
        });
        return reply.code(404).send({ error: 'AUDIT_ERR_NOT_FOUND', message });
      }
      if (!result.ok) {
        // The definition changed between the operator's review and this approval: approving now
        // would trust a definition nobody looked at.
        const message = `tool "${toolName}" of "${upstream}" is now at definition hash ${result.currentHash}, not ${requested}: its definition changed since it was listed; review it again`;
        log.warn(
          { upstream, tool, requested, current: result.currentHash, by: id.clientId },
          'stale approval refused',
        );
        auditAdmin(req, {
          upstream,
          tool: { name: toolName, definition_hash: result.currentHash },
          outcome: 'denied',
          http_status: 409,
          error: { code: 'definition_changed', message },
          labels: { change: 'approval_refused', requested_hash: requested ?? '' },
        });
        return reply.code(409).send({
          error: 'AUDIT_ERR_DEFINITION_CHANGED',
          message,
          requested_hash: requested,
          current_hash: result.currentHash,
        });
      }
      const { entry, previousApprovedHash } = result;
      log.warn({ upstream, tool, hash: entry.approved_hash, by: id.clientId }, 'tool definition approved');
      auditAdmin(req, {
        upstream,
        tool: { name: toolName, definition_hash: entry.approved_hash },
        outcome: 'ok',
        http_status: 200,
        labels: {
          change: 'approved',
          previous_approved_hash: previousApprovedHash,
          hash_checked: requested === undefined ? 'false' : 'true',
        },
      });
      return { approved: entry };
    });

    // fastify's own refusals (body over limits.body_bytes, JSON that does not parse, another
    // media type) happen before a handler runs, after authentication: audited and answered here.
    scope.setErrorHandler((err: FastifyError, req, reply) => {
      const status =
        typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600
          ? err.statusCode
          : 500;
      if (status >= 500) log.error({ err }, 'request failed');
      if (reply.sent) return;
      const fstCode =
        typeof err.code === 'string' && /^FST_[A-Z0-9_]+$/.test(err.code) ? err.code : undefined;
      // NOTE: never err.message: a parse error may quote the body, and bodies carry arguments.
      const known = fstCode ? BODY_ERRORS[fstCode] : undefined;
      const r = known ?? {
        code: status < 500 ? 'bad_request' : 'internal_error',
        message: status < 500 ? `bad request${fstCode ? ` (${fstCode})` : ''}` : 'internal error',
        rpc: status < 500 ? RPC_INVALID_REQUEST : RPC_INTERNAL_ERROR,
      };
      const message =
        r.code === 'body_too_large' ? `${r.message} (${cfg.file.limits.body_bytes} bytes)` : r.message;
      if ((req.routeOptions.url ?? '').startsWith('/mcp/')) {
        const name = (req.params as { upstream?: string }).upstream;
        const sid = req.headers['mcp-session-id'];
        void refuse(req, reply, {
          status,
          outcome: 'error',
          code: r.code,
          message,
          rpcCode: r.rpc,
          upstream: name === undefined ? undefined : upstreams.get(name),
          sessionId: typeof sid === 'string' ? sid : undefined,
          labels: fstCode ? { fastify_code: fstCode } : {},
        });
        return;
      }
      auditAdmin(req, {
        outcome: 'error',
        http_status: status,
        error: { code: r.code, message },
        ...(fstCode ? { labels: { fastify_code: fstCode } } : {}),
      });
      void reply
        .code(status)
        .send({ error: status < 500 ? 'AUDIT_ERR_INVALID_REQUEST' : 'AUDIT_ERR_INTERNAL', message });
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
