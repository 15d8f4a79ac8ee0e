import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { HealthReport } from './lifecycle.js';

export interface OpsServerDeps {
  /** Liveness: the process works (its parts are healthy). */
  health: () => HealthReport;
  /** Readiness: it should receive work now (started and not shutting down). Defaults to health. */
  ready?: () => HealthReport;
  registry: Registry;
  log: Logger;
}

/**
 * The ops port of every service: `/healthz` (liveness), `/readyz` (readiness), `/metrics`
 * (Prometheus). `/health` stays as an alias of `/healthz` (scripts/services.sh and older probes poll it).
 * Listen only in main.ts.
 */
export function buildOpsServer(deps: OpsServerDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'ops' }) as FastifyBaseLogger,
    bodyLimit: 1024,
    // Probes and scrapes every few seconds: not worth a log line each.
    disableRequestLogging: true,
  });
  registerOpsRoutes(app, deps);
  return app;
}

/** The ops routes on an existing app (a service whose one port serves both, like the collector). */
export function registerOpsRoutes(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any logger/server flavour of fastify
  app: FastifyInstance<any, any, any, any, any>,
  deps: Pick<OpsServerDeps, 'health' | 'ready' | 'registry'>,
): void {
  const answer = (h: HealthReport, reply: FastifyReply) =>
    reply.code(h.ok ? 200 : 503).send({ status: h.ok ? 'ok' : 'unhealthy', ...h.details });
  app.get('/healthz', async (_req, reply) => answer(deps.health(), reply));
  app.get('/health', async (_req, reply) => answer(deps.health(), reply));
  app.get('/readyz', async (_req, reply) => answer((deps.ready ?? deps.health)(), reply));
  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', deps.registry.contentType).send(await deps.registry.metrics()),
  );
}
