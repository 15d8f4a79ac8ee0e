import Fastify from 'fastify';
import type { Logger, Registry } from '@mcp-audit/service-kit';
import { defaultTextRedactor, type AuditEmitter, type TextRedactor } from './audit-events.js';
import { createHttpAudit } from './audit.js';
import { createClientAuth, protectedResourceRoutes } from './client-auth.js';
import type { ClientKeyStore } from './client-keys.js';
import type { GatewayFile } from './config.js';
import { createHostOriginCheck } from './host-origin.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js';
import { createSessionPool } from './sessions.js';
import { toolApprovalRoutes } from './tool-approval.routes.js';
import { toolCallRoute } from './tool-call.route.js';
import type { ToolGuard } from './tool-guard.js';
import type { UpstreamConnector } from './upstreams.js';

export interface GatewayConfig {
  file: GatewayFile;
  /** Base URL clients reach the gateway at (RFC 9728 `resource`), without a trailing slash. */
  publicUrl: string;
  /** The address the HTTP front listens on (default 127.0.0.1): decides the Host/Origin defaults. */
  host?: string;
}

export interface GatewayDeps {
  keys: ClientKeyStore;
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

/**
 * The HTTP front: MCP clients speak Streamable HTTP to `/mcp/<upstream>` (tool-call.route.ts), each
 * session bridged to its own upstream session (sessions.ts); admin routes review and approve
 * changed tool definitions (tool-approval.routes.ts). No side effects: `start()` starts the idle
 * sweep, listening is main's job.
 */
export function buildGateway(cfg: GatewayConfig, deps: GatewayDeps) {
  const { file, publicUrl } = cfg;
  const { emit, guard } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.log.child({ component: 'gateway' });
  const metrics = deps.metrics ?? createGatewayMetrics(deps.registry);
  const redactor = deps.redactor ?? defaultTextRedactor;
  const upstreams = new Map(file.upstreams.map((u) => [u.name, u]));

  const audit = createHttpAudit({ emit, guard, metrics, redactor, upstreams, now });
  const auth = createClientAuth({
    publicUrl,
    upstreams,
    keys: deps.keys,
    limits: file.rate_limit,
    audit,
    metrics,
    now,
  });
  const sessions = createSessionPool({
    limits: file.limits,
    connect: deps.connect,
    proxy: { emit, guard, metrics, log, redactor, now },
  });

  const app = Fastify({
    loggerInstance: log,
    bodyLimit: file.limits.body_bytes,
    disableRequestLogging: true,
    trustProxy: false,
    forceCloseConnections: true,
    // SSE streams stay open as long as a session wants; idle sessions are swept instead.
    requestTimeout: 0,
  });
  app.decorateRequest('identity', undefined);
  app.register(protectedResourceRoutes, { publicUrl, upstreams });
  const hostOrigin = createHostOriginCheck({
    bindHost: cfg.host ?? '127.0.0.1',
    publicUrl,
    allowedHosts: file.allowed_hosts,
    allowedOrigins: file.allowed_origins,
  });
  app.register(toolCallRoute, {
    upstreams,
    auth,
    sessions,
    audit,
    log,
    bodyBytes: file.limits.body_bytes,
    hostOrigin,
  });
  app.register(toolApprovalRoutes, { auth, audit, guard, log, bodyBytes: file.limits.body_bytes });

  return {
    app,
    /** Open sessions by id. */
    sessions: sessions.sessions,
    sweep: sessions.sweep,
    async start() {
      sessions.start();
    },
    /** Shutdown, intake: new MCP requests are answered 503 `gateway_stopping` (audited). */
    stopIntake: () => sessions.stopIntake(),
    /** Shutdown, drain: every session and its upstream closed. */
    closeSessions: () => sessions.closeAll('gateway stopping'),
    /** All of shutdown: refuse new requests, close every session (and its upstream), then HTTP. */
    async stop() {
      sessions.stopIntake();
      await sessions.closeAll('gateway stopping');
      await app.close();
    },
    health() {
      return {
        ok: !sessions.stopping,
        details: { sessions: sessions.sessions.size, upstreams: upstreams.size },
      };
    },
  };
}

export type Gateway = ReturnType<typeof buildGateway>;
