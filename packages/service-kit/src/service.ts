import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { HealthReport, Lifecycle } from './lifecycle.js';
import type { z } from 'zod';
import { loadConfigOrExit } from './config.js';
import { createLogger } from './logger.js';
import { createRegistry } from './metrics.js';
import { buildOpsServer } from './ops.server.js';

/**
 * The shutdown order of every service (STYLE.md), as phases: whatever order parts are registered in,
 * they stop in this one. Within a phase, steps run in registration order.
 * - intake: stop taking new work (close HTTP listeners, stop cron jobs, stop accepting connections)
 * - drain: stop consumers; they finish the batch in hand
 * - flush: flush writers' buffers to ClickHouse
 * - commit: commit what was written, disconnect producers
 * - close: close ClickHouse and other clients; the ops server goes last
 */
export const SHUTDOWN_PHASES = ['intake', 'drain', 'flush', 'commit', 'close'] as const;
export type ShutdownPhase = (typeof SHUTDOWN_PHASES)[number];

type Step = () => Promise<unknown> | unknown;

export interface ServiceOptions {
  name: string;
  log: Logger;
  registry: Registry;
  /** Where the ops server listens (loopback by default in every config). */
  ops?: { host: string; port: number } | undefined;
  /** Forced exit when shutdown hangs longer than this. */
  deadlineMs?: number;
  /** For tests: what happens at the end (default process.exit). */
  exit?: (code: number) => void;
  /** For tests: no SIGTERM/SIGINT handlers. */
  signals?: boolean;
}

export interface Service {
  /** Adds a step to a shutdown phase. */
  onStop(phase: ShutdownPhase, name: string, fn: Step): Service;
  /** The service's liveness: ANDed with "not shutting down" for readiness. */
  health(fn: () => HealthReport): Service;
  /**
   * A long-lived part: started by run() after the start-up step (in registration order), stopped in
   * `phase` (default drain), and its health is the service's (with several parts: all must be ok,
   * details by name).
   */
  part(name: string, part: Lifecycle, phase?: ShutdownPhase): Service;
  /** The ops server (not listening until run()). */
  readonly ops: FastifyInstance;
  /**
   * Listens on the ops port, then runs the start-up steps in order. A start-up failure logs and
   * shuts down what was registered, with exit code 1.
   */
  run(start?: Step): Promise<void>;
  /** Runs the shutdown phases once (signals call this); resolves when done, before exit. */
  stop(reason: string): Promise<number>;
  readonly stopping: boolean;
  /** The ops server's port once listening (port 0 in tests). */
  opsPort(): number | undefined;
}

/**
 * The single way a service starts and stops: an ops server with /healthz, /readyz and /metrics,
 * SIGTERM/SIGINT handling, and the shutdown order above, guarded against running twice with an
 * unref'd deadline timer. main.ts only wires parts into it.
 */
export function defineService(opts: ServiceOptions): Service {
  const { log } = opts;
  const steps = new Map<ShutdownPhase, Array<[string, Step]>>(SHUTDOWN_PHASES.map((p) => [p, []]));
  let healthFn: (() => HealthReport) | undefined;
  const parts: Array<[string, Lifecycle]> = [];
  const partsHealth = (): HealthReport => {
    if (healthFn) return healthFn();
    if (parts.length === 1) return parts[0]![1].health();
    const details: Record<string, unknown> = {};
    let ok = true;
    for (const [name, p] of parts) {
      const h = p.health();
      ok &&= h.ok;
      details[name] = h.details ?? { ok: h.ok };
    }
    return { ok, details };
  };
  let started = false;
  let stopping = false;
  let running: Promise<number> | undefined;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const deadlineMs = opts.deadlineMs ?? 25_000;

  const ops = buildOpsServer({
    registry: opts.registry,
    log,
    health: () => {
      const h = partsHealth();
      return { ok: !stopping && h.ok, details: h.details };
    },
    ready: () => {
      const h = partsHealth();
      return { ok: started && !stopping && h.ok, details: { started, stopping, ...h.details } };
    },
  });

  const service: Service = {
    ops,
    get stopping() {
      return stopping;
    },
    onStop(phase, name, fn) {
      steps.get(phase)!.push([name, fn]);
      return service;
    },
    health(fn) {
      healthFn = fn;
      return service;
    },
    part(name, part, phase = 'drain') {
      parts.push([name, part]);
      steps.get(phase)!.push([`stop ${name}`, () => part.stop()]);
      return service;
    },
    opsPort() {
      const a = ops.server.address();
      return a && typeof a === 'object' ? a.port : undefined;
    },
    stop(reason) {
      if (running) return running;
      stopping = true;
      running = (async () => {
        log.info({ service: opts.name, reason }, 'shutting down');
        const timer = setTimeout(() => {
          log.error({ deadlineMs }, 'shutdown deadline exceeded: forcing exit');
          exit(1);
        }, deadlineMs);
        timer.unref();
        let code = reason.startsWith('start-up failed') ? 1 : 0;
        const all: Array<[ShutdownPhase, string, Step]> = [];
        for (const phase of SHUTDOWN_PHASES)
          for (const [n, fn] of steps.get(phase)!) all.push([phase, n, fn]);
        all.push(['close', 'close ops server', () => ops.close()]);
        for (const [phase, name, fn] of all) {
          try {
            await fn();
            log.debug({ phase, step: name }, 'shutdown step done');
          } catch (err) {
            code = 1;
            log.error({ err, phase, step: name }, 'shutdown step failed');
          }
        }
        log.info({ code }, 'stopped');
        log.flush?.();
        clearTimeout(timer);
        return code;
      })();
      return running;
    },
    async run(start) {
      if (opts.signals ?? true) {
        const onSignal = (sig: string) => void service.stop(sig).then(exit);
        process.once('SIGTERM', () => onSignal('SIGTERM'));
        process.once('SIGINT', () => onSignal('SIGINT'));
      }
      try {
        if (opts.ops) await ops.listen({ host: opts.ops.host, port: opts.ops.port });
        await start?.();
        for (const [, p] of parts) await p.start();
        started = true;
        log.info({ service: opts.name, opsPort: service.opsPort() }, 'started');
      } catch (err) {
        log.error({ err }, 'start-up failed');
        exit(await service.stop('start-up failed'));
      }
    },
  };
  return service;
}

/** `ops` and `deadlineMs` of defineService from a service's parsed `serviceEnv` + `opsEnv` fragments. */
export function serviceOptionsFromEnv<P extends string>(
  env: Record<`MCP_AUDIT_${P}_HOST`, string> &
    Record<`MCP_AUDIT_${P}_PORT` | `MCP_AUDIT_${P}_SHUTDOWN_MS`, number>,
  prefix: P,
): { ops: { host: string; port: number }; deadlineMs: number } {
  const e = env as unknown as Record<string, string | number>;
  return {
    ops: { host: String(e[`MCP_AUDIT_${prefix}_HOST`]), port: Number(e[`MCP_AUDIT_${prefix}_PORT`]) },
    deadlineMs: Number(e[`MCP_AUDIT_${prefix}_SHUTDOWN_MS`]),
  };
}

/**
 * The first line of every main.ts: the environment parsed once (zod issues printed, exit 1 on
 * failure), the service's logger at the configured level, and its metrics registry.
 */
export function boot<S extends z.ZodType<{ MCP_AUDIT_LOG_LEVEL: string }>>(
  name: string,
  schema: S,
): { env: z.infer<S>; log: Logger; registry: Registry } {
  const env = loadConfigOrExit(schema);
  const log = createLogger(name, { level: env.MCP_AUDIT_LOG_LEVEL });
  return { env, log, registry: createRegistry(name) };
}
