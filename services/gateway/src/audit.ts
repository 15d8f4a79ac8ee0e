import type { FastifyReply, FastifyRequest } from 'fastify';
import { isJSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import {
  cleanText,
  kindOf,
  normalizeIp,
  requestNames,
  traceIdOf,
  wellFormedValue,
  type AuditEmitter,
  type EventDraft,
  type TextRedactor,
} from './audit-events.js';
import type { ClientIdentity } from './client-keys.js';
import type { UpstreamConfig } from './config.js';
import { methodLabel, type GatewayMetrics } from './metrics.js';
import { requestFields } from './mcp-proxy.js';
import type { ToolGuard } from './tool-guard.js';

export const RPC_INVALID_REQUEST = -32600;
/**
 * Requests of one refused POST audited one by one. The SDK's transport takes at most 100 per
 * batch (MAX_BATCH_SIZE), so this is every request of any batch it would have accepted; a larger
 * one is audited by its first 100, labelled with its size.
 */
export const MAX_AUDITED_PER_POST = 100;

/** A request the gateway (or the MCP transport inside it) answered without forwarding. */
export interface Refusal {
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

export const requestMeta = (req: FastifyRequest) => ({
  ip: normalizeIp(req.ip),
  userAgent: cleanText(req.headers['user-agent']),
  traceId: traceIdOf(req.headers.traceparent),
});

/** What the client declared it sends: a refused request's body is never measured (nor read, before auth). */
const declaredBytes = (req: FastifyRequest) => Number(req.headers['content-length'] ?? 0) || 0;

const serverOf = (upstream: UpstreamConfig | undefined): EventDraft['server'] =>
  upstream ? { name: upstream.name, transport: upstream.transport } : { name: 'gateway', transport: 'http' };

export interface HttpAuditDeps {
  emit: AuditEmitter['emit'];
  guard: ToolGuard;
  metrics: GatewayMetrics;
  redactor: TextRedactor;
  upstreams: ReadonlyMap<string, UpstreamConfig>;
  now: () => number;
}

export type HttpAudit = ReturnType<typeof createHttpAudit>;

/**
 * The events of what the HTTP front answers itself: failed and forbidden authentications, refused
 * MCP requests and admin actions. Forwarded requests are audited by their session (mcp-proxy.ts).
 */
export function createHttpAudit(deps: HttpAuditDeps) {
  const ts = () => new Date(deps.now()).toISOString();
  const authenticated = (req: FastifyRequest) =>
    req.identity ? { auth: { method: 'api_key' as const, result: 'success' as const } } : {};

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

  /** No valid key (`throttled`: the address is over `auth_failures_per_minute`, answered 429). */
  function authFailed(
    req: FastifyRequest,
    upstream: UpstreamConfig | undefined,
    f: { status: number; reason: string; method: 'api_key' | 'none'; throttled: boolean },
  ) {
    const meta = requestMeta(req);
    deps.emit({
      ts: ts(),
      kind: 'auth',
      method: `http:${req.method}`,
      client: { id: 'unauthenticated', ip: meta.ip, user_agent: meta.userAgent },
      server: serverOf(upstream),
      outcome: 'auth_failed',
      http_status: f.status,
      auth: { method: f.method, result: 'failure', reason: f.reason },
      trace_id: meta.traceId,
      error: { code: 'AUDIT_ERR_UNAUTHENTICATED', message: f.reason },
      duration_ms: 0,
      request_bytes: declaredBytes(req),
      response_bytes: 0,
      labels: { path: req.routeOptions.url ?? 'unknown', ...(f.throttled ? { throttled: 'true' } : {}) },
    });
  }

  /** A valid key without the scope, or outside its `upstreams`. */
  function forbidden(
    req: FastifyRequest,
    upstream: UpstreamConfig | undefined,
    id: ClientIdentity,
    reason: string,
  ) {
    const meta = requestMeta(req);
    deps.emit({
      ts: ts(),
      kind: 'auth',
      method: `http:${req.method}`,
      client: { id: id.clientId, user: id.user, name: id.name, ip: meta.ip, user_agent: meta.userAgent },
      server: serverOf(upstream),
      outcome: 'denied',
      http_status: 403,
      auth: { method: 'api_key', result: 'success', reason },
      trace_id: meta.traceId,
      error: { code: 'AUDIT_ERR_FORBIDDEN', message: reason },
      duration_ms: 0,
      request_bytes: declaredBytes(req),
      response_bytes: 0,
    });
  }

  /**
   * Audit a refused HTTP request: one event per JSON-RPC request in its body (the first
   * MAX_AUDITED_PER_POST), or one for the HTTP request itself when it carries none (GET, DELETE,
   * notifications only, a body that never parsed). The response size rides on the first event.
   */
  function refused(req: FastifyRequest, r: Refusal, messages: readonly unknown[], responseBytes: number) {
    const requests = messages.filter(isJSONRPCRequest);
    const base = {
      ts: ts(),
      client: identityClient(req, r.sessionId),
      server: serverOf(r.upstream),
      outcome: r.outcome,
      http_status: r.status,
      rpc_error_code: r.rpcCode,
      ...authenticated(req),
      trace_id: requestMeta(req).traceId,
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
        request_bytes: declaredBytes(req),
        response_bytes: responseBytes,
      });
      deps.metrics.requests.inc({ ...metric, method: 'other' });
      return;
    }
    requests.slice(0, MAX_AUDITED_PER_POST).forEach((m, i) => {
      const { tool, args } = requestFields(m);
      const names = requestNames(m.method, tool, deps.redactor);
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
      deps.metrics.requests.inc({ ...metric, method: methodLabel(m.method) });
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
    refused(req, { ...r, rpcCode: body.error.code }, messages, Buffer.byteLength(JSON.stringify(body)));
    return reply.code(r.status).send(body);
  }

  /**
   * The SDK's transport answers some requests itself (406 without an acceptable Accept header,
   * 415, a bad protocol version header, a batch over 100, a second initialize): nothing of them
   * reaches the session, so audit them here from the status it wrote.
   */
  function transportRefusal(
    req: FastifyRequest,
    reply: FastifyReply,
    messages: readonly unknown[],
    upstream: UpstreamConfig,
    sessionId: string | undefined,
  ) {
    const status = reply.raw.statusCode;
    if (status < 400) return;
    refused(
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

  /** Admin actions are audited too, refused ones included (`kind: tool_list`, method admin/...). */
  function admin(
    req: FastifyRequest,
    e: Pick<EventDraft, 'outcome' | 'http_status' | 'error' | 'labels' | 'tool'> & {
      upstream?: string | undefined;
    },
  ) {
    const known = e.upstream === undefined ? undefined : deps.upstreams.get(e.upstream);
    deps.emit({
      ts: ts(),
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
      ...authenticated(req),
      trace_id: requestMeta(req).traceId,
      error: e.error,
      duration_ms: 0,
      request_bytes: declaredBytes(req),
      response_bytes: 0,
      labels: e.labels,
    });
  }

  return { authFailed, forbidden, refused, refuse, transportRefusal, admin };
}
