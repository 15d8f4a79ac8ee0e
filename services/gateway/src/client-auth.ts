import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { createRateLimiter, presentedCredential, type RateLimiter } from '@mcp-audit/service-kit';
import { requestMeta, type HttpAudit } from './audit.js';
import type { ClientIdentity, ClientKeyStore } from './client-keys.js';
import type { GatewayFile, UpstreamConfig } from './config.js';
import type { GatewayMetrics } from './metrics.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the onRequest hook of `createClientAuth`, before the body is read. */
    identity?: ClientIdentity;
  }
}

const RPC_UNAUTHORIZED = -32001;

export type ClientScopeName = 'mcp' | 'admin';

/**
 * The per-client request bucket of both fronts: the gateway's `rate_limit`, with a client's own
 * `rate_limit` fields (ClientIdentity.rateLimit) over it, keyed by client id.
 */
export function createClientLimiter(limits: GatewayFile['rate_limit'], now?: () => number): RateLimiter {
  return createRateLimiter({ perSecond: limits.per_second, burst: limits.burst, ...(now ? { now } : {}) });
}

export interface ClientAuthDeps {
  /** Base URL clients reach the gateway at, without a trailing slash. */
  publicUrl: string;
  upstreams: ReadonlyMap<string, UpstreamConfig>;
  keys: ClientKeyStore;
  limits: GatewayFile['rate_limit'];
  audit: HttpAudit;
  metrics: GatewayMetrics;
  now: () => number;
}

export type ClientAuth = ReturnType<typeof createClientAuth>;

/**
 * Who may send what: API keys (Bearer or X-API-Key) checked in a route's onRequest hook, so a
 * stranger's body is never parsed; failed attempts limited per address (429 past
 * `auth_failures_per_minute`); admitted requests limited per client. Every refusal is answered
 * here and audited.
 */
export function createClientAuth(deps: ClientAuthDeps) {
  const perClient = createClientLimiter(deps.limits, deps.now);
  const perAddress = createRateLimiter({
    perSecond: deps.limits.auth_failures_per_minute / 60,
    burst: deps.limits.auth_failures_per_minute,
    now: deps.now,
  });

  const metadataUrl = (upstream: string | undefined) =>
    `${deps.publicUrl}/.well-known/oauth-protected-resource${upstream ? `/mcp/${upstream}` : ''}`;

  /** The identity of a request, or undefined once 401/403/429 has been answered and audited. */
  function authenticate(
    req: FastifyRequest,
    reply: FastifyReply,
    scope: ClientScopeName,
    upstream: UpstreamConfig | undefined,
  ): ClientIdentity | undefined {
    const presented = presentedCredential(req.headers);
    const v = presented.malformed
      ? ({ ok: false, reason: 'malformed_credential' } as const)
      : deps.keys.verify(presented.key);
    if (!v.ok) {
      deps.metrics.authFailures.inc({ reason: v.reason });
      const throttled = perAddress.take(`ip:${requestMeta(req).ip ?? 'unknown'}`) > 0;
      const status = throttled ? 429 : 401;
      deps.audit.authFailed(req, upstream, {
        status,
        reason: v.reason,
        method: presented.key || presented.malformed ? 'api_key' : 'none',
        throttled,
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
      deps.audit.forbidden(req, upstream, id, reason);
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

  return {
    /** onRequest hook of a route that needs `scope`; sets `req.identity`. */
    hook:
      (scope: ClientScopeName) =>
      async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
        const name = (req.params as { upstream?: string }).upstream;
        const identity = authenticate(
          req,
          reply,
          scope,
          name === undefined ? undefined : deps.upstreams.get(name),
        );
        if (!identity) return reply;
        req.identity = identity;
        return undefined;
      },

    /** Take one token per request of a POST: 0 when all are admitted, else the ms until one is back. */
    admit(identity: ClientIdentity, requests: number): number {
      for (let i = 0; i < requests; i++) {
        const wait = perClient.take(identity.clientId, identity.rateLimit);
        if (wait > 0) return wait;
      }
      return 0;
    },
  };
}

/**
 * RFC 9728 metadata of an API-key protected resource: no `authorization_servers`, because the
 * gateway is no OAuth resource server (config.ts refuses them; README: Authentication). 401s point
 * clients here (`resource_metadata`).
 */
export const protectedResourceRoutes: FastifyPluginAsync<{
  publicUrl: string;
  upstreams: ReadonlyMap<string, UpstreamConfig>;
}> = async (app, { publicUrl, upstreams }) => {
  const protectedResource = (upstream: string | undefined) => ({
    resource: upstream ? `${publicUrl}/mcp/${upstream}` : publicUrl,
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
};
