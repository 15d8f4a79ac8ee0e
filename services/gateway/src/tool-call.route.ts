import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isInitializeRequest, isJSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '@mcp-audit/service-kit';
import { cleanText } from './audit-events.js';
import { MAX_AUDITED_PER_POST, requestMeta, type HttpAudit, type Refusal } from './audit.js';
import type { ClientAuth } from './client-auth.js';
import type { UpstreamConfig } from './config.js';
import type { createHostOriginCheck } from './host-origin.js';
import { RPC_RATE_LIMITED, RPC_UPSTREAM_UNAVAILABLE } from './mcp-proxy.js';
import { requestErrorHandler } from './request-errors.js';
import { upstreamUnavailable, type HttpSession, type SessionPool } from './sessions.js';

export interface ToolCallRouteOptions {
  upstreams: ReadonlyMap<string, UpstreamConfig>;
  auth: ClientAuth;
  sessions: SessionPool;
  audit: HttpAudit;
  log: Logger;
  /** `limits.body_bytes`, named in the 413 message. */
  bodyBytes: number;
  /** DNS rebinding protection: Host and Origin of every request (host-origin.ts). */
  hostOrigin: ReturnType<typeof createHostOriginCheck>;
}

/** What the SDK's transport answers a bad Host or Origin with (its DNS rebinding protection). */
const RPC_REBINDING_REFUSED = -32000;

/**
 * `POST|GET|DELETE /mcp/<upstream>`: the path of one MCP request (a tool call, or any other
 * JSON-RPC message) through the HTTP gateway, in order:
 *
 *  0. Host and Origin (host-origin.ts): a DNS rebinding page is answered 403 before anything else;
 *  1. authenticate: `onRequest` hook (client-auth.ts), before the body is read: 401/403/429, audited;
 *  2. body: parsed by fastify; 413/400/415 go to this plugin's error handler, audited as refusals;
 *  3. the gateway is not stopping, the upstream exists;
 *  4. session: the client's own, on this upstream (sessions.ts), else 404 `Session not found`;
 *  5. rate limit: one token of the client's bucket per JSON-RPC request (client-auth.ts), else 429;
 *  6. forward: the session's transport hands each message to its ProxySession (mcp-proxy.ts), which
 *     checks the tool guard (a changed, unapproved definition: JSON-RPC -32040, audited `denied`),
 *     sends it upstream and emits the request's audit event when the response comes back;
 *  7. or, for an `initialize` without a session, a new session with its own upstream session.
 *
 * Every refusal on the way is answered by `audit.refuse` (audit.ts): a JSON-RPC error and one event
 * per request of the body.
 */
export const toolCallRoute: FastifyPluginAsync<ToolCallRouteOptions> = async (app, opts) => {
  const { upstreams, auth, sessions, audit } = opts;

  app.setErrorHandler(
    requestErrorHandler(opts.log, opts.bodyBytes, (req, reply, e) => {
      const name = (req.params as { upstream?: string }).upstream;
      const sid = req.headers['mcp-session-id'];
      void audit.refuse(req, reply, {
        status: e.status,
        outcome: 'error',
        code: e.code,
        message: e.message,
        rpcCode: e.rpc,
        upstream: name === undefined ? undefined : upstreams.get(name),
        sessionId: typeof sid === 'string' ? sid : undefined,
        labels: e.fstCode ? { fastify_code: e.fstCode } : {},
      });
    }),
  );

  app.route({
    method: ['POST', 'GET', 'DELETE'],
    url: '/mcp/:upstream',
    onRequest: [checkHostOrigin, auth.hook('mcp')],
    handler: handleMcp,
  });

  async function checkHostOrigin(
    req: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply | undefined> {
    const v = opts.hostOrigin(req);
    if (v.ok) return undefined;
    const name = (req.params as { upstream?: string }).upstream;
    const header = cleanText(v.header, 256) ?? '';
    const message = `${v.code === 'host_not_allowed' ? 'Invalid Host header' : 'Invalid Origin header'}: ${header}`;
    opts.log.warn({ code: v.code, header, ip: req.ip }, 'refused a request for its Host or Origin');
    // The body is not read: one event for the HTTP request, whoever sent it.
    return audit.refuse(req, reply, {
      status: 403,
      outcome: 'denied',
      code: v.code,
      message,
      rpcCode: RPC_REBINDING_REFUSED,
      upstream: name === undefined ? undefined : upstreams.get(name),
      labels: { [v.code === 'host_not_allowed' ? 'host' : 'origin']: header },
    });
  }

  async function handleMcp(req: FastifyRequest<{ Params: { upstream: string } }>, reply: FastifyReply) {
    const identity = req.identity!;
    const upstream = upstreams.get(req.params.upstream);
    const sid = req.headers['mcp-session-id'];
    const sessionId = typeof sid === 'string' ? sid : undefined;
    const body = req.method === 'POST' ? (req.body as unknown) : undefined;
    const messages = body === undefined ? [] : Array.isArray(body) ? (body as unknown[]) : [body];
    const requests = messages.filter(isJSONRPCRequest);
    const refuse = (r: Refusal) => audit.refuse(req, reply, r, messages);

    if (sessions.stopping) {
      reply.header('retry-after', '5');
      return refuse({
        status: 503,
        outcome: 'error',
        code: 'gateway_stopping',
        message: 'gateway is shutting down',
        rpcCode: RPC_UPSTREAM_UNAVAILABLE,
        upstream,
        sessionId,
      });
    }
    if (!upstream)
      return refuse({
        status: 404,
        outcome: 'error',
        code: 'unknown_upstream',
        message: `no upstream named "${cleanText(req.params.upstream, 64) ?? ''}"`,
        labels: { requested_upstream: cleanText(req.params.upstream, 64) ?? '' },
        sessionId,
      });

    let open: HttpSession | undefined;
    if (sessionId !== undefined) {
      const found = sessions.lookup(sessionId, identity, upstream);
      if ('refusal' in found) return refuse(found.refusal);
      open = found.session;
    }

    const waitMs = requests.length > 0 ? auth.admit(identity, requests.length) : 0;
    if (waitMs > 0) {
      const message = `rate limit exceeded; retry in ${Math.ceil(waitMs / 1000)}s`;
      reply.header('retry-after', String(Math.max(1, Math.ceil(waitMs / 1000))));
      if (!open)
        return refuse({
          status: 429,
          outcome: 'denied',
          code: 'rate_limited',
          message,
          rpcCode: RPC_RATE_LIMITED,
          upstream,
        });
      // Within a session, the session audits them as it audits what it forwards.
      for (const r of requests.slice(0, MAX_AUDITED_PER_POST))
        open.proxy.auditRefusal(r, 'rate_limited', message, { httpStatus: 429 });
      return reply.code(429).send({
        jsonrpc: '2.0',
        id: requests.length === 1 ? requests[0]!.id : null,
        error: { code: RPC_RATE_LIMITED, message },
      });
    }

    if (open) {
      reply.hijack();
      await open.transport.handleRequest(req.raw, reply.raw, body);
      audit.transportRefusal(req, reply, messages, upstream, sessionId);
      return reply;
    }

    if (req.method !== 'POST' || !messages.some(isInitializeRequest))
      return refuse({
        status: 400,
        outcome: 'error',
        code: 'missing_session',
        message: 'Bad Request: No valid session ID provided',
        rpcCode: -32000,
        upstream,
      });
    if (sessions.full()) {
      reply.header('retry-after', '30');
      return refuse({
        status: 503,
        outcome: 'denied',
        code: 'too_many_sessions',
        message: `too many open sessions (limits.max_sessions = ${sessions.maxSessions})`,
        rpcCode: RPC_UPSTREAM_UNAVAILABLE,
        upstream,
      });
    }
    const meta = requestMeta(req);
    const created = await sessions.open(
      upstream,
      { identity, ip: meta.ip, userAgent: meta.userAgent, traceId: meta.traceId, downstream: 'http' },
      requests,
    );
    if (!created)
      return reply.code(502).send({
        jsonrpc: '2.0',
        id: null,
        error: { code: RPC_UPSTREAM_UNAVAILABLE, message: upstreamUnavailable(upstream) },
      });
    reply.hijack();
    await created.transport.handleRequest(req.raw, reply.raw, body);
    // The SDK refused the initialize (bad protocol version, batch, ...): no session came of it.
    if (!created.transport.sessionId) {
      audit.transportRefusal(req, reply, messages, upstream, undefined);
      await created.proxy.close('initialize refused');
    }
    return reply;
  }
};
