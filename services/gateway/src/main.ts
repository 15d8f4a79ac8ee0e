import { createRedactor } from '@mcp-audit/redaction';
import { createAuditEmitter, sinkFromEnv } from '@mcp-audit/sdk';
import { createLogger, createRegistry, defineService, loadConfigOrExit } from '@mcp-audit/service-kit';
import { buildGateway } from './app.js';
import { createClientLimiter } from './client-auth.js';
import { createClientKeyStore } from './client-keys.js';
import {
  gatewayEnvSchema,
  loadClientsFile,
  loadGatewayFile,
  mergeClients,
  resolveHeaderValues,
} from './config.js';
import { createGatewayMetrics } from './metrics.js';
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

const { file, clients, headers, sink } = loadOrExit();
const registry = createRegistry('gateway');
// One redactor for events, the gateway's own cuts and recorded tool definitions: one fingerprint per secret.
const key = process.env.MCP_AUDIT_REDACTION_KEY;
const redactor = createRedactor(key ? { fingerprintKey: key } : {});
const source = { type: 'gateway' as const, id: file.gateway_id, version: GATEWAY_VERSION };
const emitter = createAuditEmitter({ sink, source, redactor, logger: log });
const deps = {
  keys: createClientKeyStore(clients),
  guard: createToolGuard({
    enabled: file.guard.enabled,
    store: fileGuardStore(file.guard.state_file),
    redactor,
  }),
  emit: (d: Parameters<typeof emitter.emit>[0]) => emitter.emit(d),
  connect: createUpstreamConnector({
    log,
    headers,
    verboseStderr: env.MCP_AUDIT_GATEWAY_DEBUG_UPSTREAM_STDERR,
  }),
  metrics: createGatewayMetrics(registry),
  log,
  redactor,
};
if (deps.keys.size() === 0) log.warn('no client keys configured: every request will be refused');

const service = defineService({
  name: 'gateway',
  log,
  registry,
  deadlineMs: env.MCP_AUDIT_GATEWAY_SHUTDOWN_MS,
  // A stdio gateway is one client's child process: no ops port.
  ops: stdio ? undefined : { host: env.MCP_AUDIT_GATEWAY_OPS_HOST, port: env.MCP_AUDIT_GATEWAY_OPS_PORT },
});
service.onStop('flush', 'flush audit events', () => emitter.close());

if (stdio) {
  const gw = buildStdioGateway(
    { upstream: stdioUpstream(), apiKey: env.MCP_AUDIT_GATEWAY_API_KEY },
    { ...deps, limiter: createClientLimiter(file.rate_limit) },
  );
  service.health(gw.health).onStop('drain', 'close session and upstream', () => gw.stop('signal'));
  await service.run(() => gw.start());
  void gw.done.then(() => service.stop('client closed')).then((code) => process.exit(code));
} else {
  const publicUrl = file.public_url ?? `http://${env.MCP_AUDIT_GATEWAY_HOST}:${env.MCP_AUDIT_GATEWAY_PORT}`;
  const gw = buildGateway(
    { file, publicUrl: publicUrl.replace(/\/$/, ''), host: env.MCP_AUDIT_GATEWAY_HOST },
    { ...deps, registry },
  );
  service
    .health(() => {
      const h = gw.health();
      return { ok: h.ok, details: { ...h.details, audit: emitter.stats() } };
    })
    // Sessions end before the HTTP server closes, so their clients get answers, not cut sockets.
    .onStop('intake', 'refuse new MCP requests', () => gw.stopIntake())
    .onStop('drain', 'close sessions and upstreams', () => gw.closeSessions())
    .onStop('drain', 'close the MCP HTTP server', () => gw.app.close());
  await service.run(async () => {
    await gw.start();
    await gw.app.listen({ host: env.MCP_AUDIT_GATEWAY_HOST, port: env.MCP_AUDIT_GATEWAY_PORT });
    const upstreams = file.upstreams.map((u) => u.name);
    log.info({ port: env.MCP_AUDIT_GATEWAY_PORT, upstreams, guard: file.guard.enabled }, 'gateway listening');
  });
}

/** The gateway file, extra clients, upstream headers and the event sink; a bad one exits 1 naming it. */
function loadOrExit() {
  try {
    const file = loadGatewayFile(env.MCP_AUDIT_GATEWAY_CONFIG);
    const extra = env.MCP_AUDIT_GATEWAY_CLIENTS_FILE;
    const clients = extra ? mergeClients(file.clients, loadClientsFile(extra), extra) : file.clients;
    const headers = Object.fromEntries(
      file.upstreams.flatMap((u) =>
        u.transport === 'http' ? [[u.name, resolveHeaderValues(u.headers, process.env)]] : [],
      ),
    );
    return { file, clients, headers, sink: sinkFromEnv(process.env, { logger: log }) };
  } catch (err) {
    // Messages name the file, field or variable, never a secret value.
    process.stderr.write(`gateway: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

function stdioUpstream() {
  const name = env.MCP_AUDIT_GATEWAY_STDIO_UPSTREAM ?? file.stdio_upstream ?? file.upstreams[0]!.name;
  const upstream = file.upstreams.find((u) => u.name === name);
  if (upstream) return upstream;
  process.stderr.write(`gateway: MCP_AUDIT_GATEWAY_STDIO_UPSTREAM names no upstream "${name}"\n`);
  process.exit(1);
}
