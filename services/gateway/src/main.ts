import { createRedactor } from '@mcp-audit/redaction';
import { createAuditEmitter, sinkFromEnv } from '@mcp-audit/sdk';
import { createLogger, createRegistry, installShutdown, loadConfigOrExit } from '@mcp-audit/service-kit';
import { buildGateway, buildOpsServer } from './app.js';
import { createKeyStore } from './client-keys.js';
import {
  gatewayEnvSchema,
  loadClientsFile,
  loadGatewayFile,
  mergeClients,
  resolveHeaderValues,
} from './config.js';
import { createGatewayMetrics } from './metrics.js';
import { createRateLimiter } from './rate-limiter.js';
import { buildStdioGateway } from './stdio-gateway.js';
import { createToolGuard, fileGuardStore } from './tool-guard.js';
import { createUpstreamConnector } from './upstreams.js';
import { GATEWAY_VERSION } from './version.js';

const env = loadConfigOrExit(gatewayEnvSchema);
const stdio = env.MCP_AUDIT_GATEWAY_MODE === 'stdio';
// NOTE: in stdio mode stdout is the MCP channel: every log line goes to stderr.
const log = createLogger('gateway', {
  level: env.MCP_AUDIT_LOG_LEVEL,
  ...(stdio ? { destination: process.stderr } : {}),
});

let setup: ReturnType<typeof load>;
function load() {
  const file = loadGatewayFile(env.MCP_AUDIT_GATEWAY_CONFIG);
  const extra = env.MCP_AUDIT_GATEWAY_CLIENTS_FILE;
  const clients = extra ? mergeClients(file.clients, loadClientsFile(extra), extra) : file.clients;
  const headers = Object.fromEntries(
    file.upstreams.flatMap((u) =>
      u.transport === 'http' ? [[u.name, resolveHeaderValues(u.headers, process.env)]] : [],
    ),
  );
  const sink = sinkFromEnv(process.env, { logger: log });
  return { file, clients, headers, sink };
}
try {
  setup = load();
} catch (err) {
  // Messages name the file, field or variable, never a secret value.
  process.stderr.write(`gateway: ${(err as Error).message}\n`);
  process.exit(1);
}

const { file, clients, headers, sink } = setup;
const registry = createRegistry('gateway');
const metrics = createGatewayMetrics(registry);
// One redactor for events, the gateway's own cuts and recorded tool definitions: one fingerprint
// per secret.
const redactor = createRedactor(
  process.env.MCP_AUDIT_REDACTION_KEY ? { fingerprintKey: process.env.MCP_AUDIT_REDACTION_KEY } : {},
);
const emitter = createAuditEmitter({
  sink,
  source: { type: 'gateway', id: file.gateway_id, version: GATEWAY_VERSION },
  redactor,
  logger: log,
});
const keys = createKeyStore(clients);
const guard = createToolGuard({
  enabled: file.guard.enabled,
  store: fileGuardStore(file.guard.state_file),
  redactor,
});
const connect = createUpstreamConnector({
  log,
  headers,
  verboseStderr: env.MCP_AUDIT_GATEWAY_DEBUG_UPSTREAM_STDERR,
});
const emit = (d: Parameters<typeof emitter.emit>[0]) => emitter.emit(d);
if (keys.size() === 0) log.warn('no client keys configured: every request will be refused');

if (stdio) {
  const name = env.MCP_AUDIT_GATEWAY_STDIO_UPSTREAM ?? file.stdio_upstream ?? file.upstreams[0]!.name;
  const upstream = file.upstreams.find((u) => u.name === name);
  if (!upstream) {
    process.stderr.write(`gateway: MCP_AUDIT_GATEWAY_STDIO_UPSTREAM names no upstream "${name}"\n`);
    process.exit(1);
  }
  const gw = buildStdioGateway(
    { upstream, apiKey: env.MCP_AUDIT_GATEWAY_API_KEY },
    {
      keys,
      guard,
      emit,
      connect,
      limiter: createRateLimiter({ perSecond: file.rate_limit.per_second, burst: file.rate_limit.burst }),
      metrics,
      log,
      redactor,
    },
  );
  const shutdown = installShutdown(
    log,
    [
      ['close session and upstream', () => gw.stop('signal')],
      ['flush audit events', () => emitter.close()],
    ],
    { deadlineMs: env.MCP_AUDIT_GATEWAY_SHUTDOWN_MS },
  );
  await gw.start();
  void gw.done.then(() => shutdown('client closed'));
} else {
  let healthy = true;
  const gw = buildGateway(
    {
      file,
      publicUrl: (
        file.public_url ?? `http://${env.MCP_AUDIT_GATEWAY_HOST}:${env.MCP_AUDIT_GATEWAY_PORT}`
      ).replace(/\/$/, ''),
    },
    { keys, guard, emit, connect, log, registry, metrics, redactor },
  );
  const ops = buildOpsServer({
    health: () => {
      const h = gw.health();
      return { ok: healthy && h.ok, details: { ...h.details, audit: emitter.stats() } };
    },
    registry,
    log,
  });
  installShutdown(
    log,
    [
      ['mark unhealthy', () => void (healthy = false)],
      ['close http and sessions', () => gw.stop()],
      ['close ops', () => ops.close()],
      ['flush audit events', () => emitter.close()],
    ],
    { deadlineMs: env.MCP_AUDIT_GATEWAY_SHUTDOWN_MS },
  );
  await gw.start();
  await ops.listen({ host: env.MCP_AUDIT_GATEWAY_OPS_HOST, port: env.MCP_AUDIT_GATEWAY_OPS_PORT });
  await gw.app.listen({ host: env.MCP_AUDIT_GATEWAY_HOST, port: env.MCP_AUDIT_GATEWAY_PORT });
  log.info(
    {
      port: env.MCP_AUDIT_GATEWAY_PORT,
      upstreams: file.upstreams.map((u) => u.name),
      guard: file.guard.enabled,
    },
    'gateway listening',
  );
}
