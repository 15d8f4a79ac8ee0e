import { randomUUID } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '@mcp-audit/service-kit';
import { SessionEventStore } from './event-store.js';
import type { Refusal } from './audit.js';
import type { ClientIdentity } from './client-keys.js';
import type { GatewayFile, UpstreamConfig } from './config.js';
import { ProxySession, type ProxyDeps, type SessionContext } from './mcp-proxy.js';
import type { UpstreamConnector } from './upstreams.js';

export interface HttpSession {
  proxy: ProxySession;
  transport: StreamableHTTPServerTransport;
}

/** What the SDK's transport answers for an unknown session; the gateway answers the same. */
const RPC_SESSION_NOT_FOUND = -32001;

export interface SessionPoolDeps {
  limits: GatewayFile['limits'];
  connect: UpstreamConnector;
  /** What every ProxySession gets (emitter, guard, metrics, log, redactor, clock). */
  proxy: ProxyDeps & { log: Logger; now: () => number };
}

export type SessionPool = ReturnType<typeof createSessionPool>;

/**
 * The Streamable HTTP sessions: each client session is one SDK server transport bridged to its own
 * upstream session by a ProxySession, owned by the client that opened it, capped by
 * `limits.max_sessions` and closed after `limits.session_idle_ms` of silence.
 */
export function createSessionPool(deps: SessionPoolDeps) {
  const { limits, proxy: proxyDeps } = deps;
  const { log, now } = proxyDeps;
  const sessions = new Map<string, HttpSession>();
  // Sessions being set up (upstream starting), counted against max_sessions too.
  let opening = 0;
  let stopping = false;
  let sweeper: NodeJS.Timeout | undefined;

  /**
   * The open session `sessionId` names, if it belongs to this client and upstream. Anything else is
   * answered as the SDK answers an unknown session, so ids cannot be probed; the refusal says which
   * it was: a session id under another identity is what session-misuse detection needs.
   */
  function lookup(
    sessionId: string,
    identity: ClientIdentity,
    upstream: UpstreamConfig,
  ): { session: HttpSession } | { refusal: Refusal } {
    const open = sessions.get(sessionId);
    const session = open?.proxy;
    if (open && session!.upstream.name === upstream.name && session!.clientId === identity.clientId)
      return { session: open };
    const foreign = session !== undefined && session.clientId !== identity.clientId;
    if (foreign)
      log.warn({ client: identity.clientId, owner: session.clientId }, 'session used by another client');
    return {
      refusal: {
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
    };
  }

  /**
   * A new session with its own upstream session, started first so the initialize request has
   * somewhere to go. Undefined when the upstream did not start: its requests are then audited as
   * `upstream_unavailable` and the half-open session closed.
   */
  async function open(
    upstream: UpstreamConfig,
    ctx: SessionContext,
    requests: readonly JSONRPCRequest[],
  ): Promise<HttpSession | undefined> {
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      // The client's stream is the gateway's: its event ids and Last-Event-ID resumption come from
      // this per-session store (event-store.ts says why the upstream's ids cannot pass through).
      ...(limits.resume_events > 0
        ? {
            eventStore: new SessionEventStore({
              maxEvents: limits.resume_events,
              maxBytes: limits.resume_bytes,
            }),
          }
        : {}),
      onsessioninitialized: (id) => {
        sessions.set(id, { proxy, transport });
      },
    });
    const proxy = new ProxySession({
      upstream,
      upstreamTransport: deps.connect(upstream),
      downstream: transport,
      ctx,
      deps: proxyDeps,
    });
    proxy.onclose = () => {
      if (proxy.sessionId) sessions.delete(proxy.sessionId);
    };
    opening += 1;
    try {
      await proxy.start();
    } catch (err) {
      log.error({ err, upstream: upstream.name }, 'could not start the upstream session');
      const message = upstreamUnavailable(upstream);
      for (const r of requests) proxy.auditRefusal(r, 'upstream_unavailable', message, { httpStatus: 502 });
      await proxy.close('upstream failed to start');
      return undefined;
    } finally {
      opening -= 1;
    }
    return { proxy, transport };
  }

  /** Close sessions silent for longer than `limits.session_idle_ms` (and their upstream sessions). */
  async function sweep(): Promise<number> {
    const cutoff = now() - limits.session_idle_ms;
    const idle = [...sessions.values()].filter((s) => s.proxy.lastActivity < cutoff);
    for (const s of idle) await s.proxy.close('idle');
    if (idle.length > 0) log.info({ closed: idle.length }, 'idle sessions closed');
    return idle.length;
  }

  return {
    /** Open sessions by id. */
    sessions,
    lookup,
    open,
    sweep,
    maxSessions: limits.max_sessions,
    /** No room for another session (`limits.max_sessions`, sessions being set up included). */
    full: () => sessions.size + opening >= limits.max_sessions,
    /** True once shutdown began: new requests are refused (503 gateway_stopping). */
    get stopping() {
      return stopping;
    },
    start() {
      sweeper = setInterval(() => void sweep(), Math.min(60_000, limits.session_idle_ms));
      sweeper.unref();
    },
    /** Refuse new requests from now on; open sessions keep going until closeAll(). */
    stopIntake() {
      stopping = true;
      if (sweeper) clearInterval(sweeper);
    },
    /** Close every session and its upstream. */
    async closeAll(reason: string) {
      await Promise.allSettled([...sessions.values()].map((s) => s.proxy.close(reason)));
    },
  };
}

export const upstreamUnavailable = (upstream: UpstreamConfig) => `upstream "${upstream.name}" is unavailable`;
