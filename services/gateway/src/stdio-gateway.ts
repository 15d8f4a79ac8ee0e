import type { Readable, Writable } from 'node:stream';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { isJSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Logger, RateLimiter } from '@mcp-audit/service-kit';
import { defaultTextRedactor, eventMethod, type AuditEmitter, type TextRedactor } from './audit-events.js';
import type { ClientKeyStore } from './client-keys.js';
import type { UpstreamConfig } from './config.js';
import type { GatewayMetrics } from './metrics.js';
import { ProxySession } from './mcp-proxy.js';
import type { ToolGuard } from './tool-guard.js';
import type { UpstreamConnector } from './upstreams.js';

export interface StdioGatewayConfig {
  upstream: UpstreamConfig;
  /** The client's credential, from the environment (MCP_AUDIT_GATEWAY_API_KEY). */
  apiKey: string | undefined;
}

export interface StdioGatewayDeps {
  keys: ClientKeyStore;
  guard: ToolGuard;
  emit: AuditEmitter['emit'];
  connect: UpstreamConnector;
  limiter: RateLimiter;
  metrics: GatewayMetrics;
  log: Logger;
  /** The emitter's redactor, for identifiers the gateway must cut to the event's limits itself. */
  redactor?: TextRedactor;
  input?: Readable;
  output?: Writable;
  now?: () => number;
}

/**
 * A gateway a desktop MCP client launches as if it were the server: MCP on stdin/stdout, one
 * session, one upstream. The credential comes from the environment (the MCP authorization spec's
 * rule for stdio); without a valid one no upstream is started and every request is answered with
 * a JSON-RPC error, each audited as `auth_failed`.
 */
export function buildStdioGateway(cfg: StdioGatewayConfig, deps: StdioGatewayDeps) {
  const now = deps.now ?? Date.now;
  const input = deps.input ?? process.stdin;
  const output = deps.output ?? process.stdout;
  const downstream = new StdioServerTransport(input, output);
  let session: ProxySession | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let stopped = false;

  async function stop(reason = 'stopped') {
    if (stopped) return;
    stopped = true;
    if (session) await session.close(reason);
    else await downstream.close();
    resolveDone();
  }

  return {
    done,
    async start() {
      input.once('end', () => void stop('client closed'));
      input.once('close', () => void stop('client closed'));
      const v = deps.keys.verify(cfg.apiKey);
      if (!v.ok) {
        deps.log.error(
          { reason: v.reason },
          'stdio gateway: MCP_AUDIT_GATEWAY_API_KEY is missing or invalid',
        );
        deps.metrics.authFailures.inc({ reason: v.reason });
        downstream.onmessage = (msg) => {
          if (!isJSONRPCRequest(msg)) return;
          const names = eventMethod(msg.method, deps.redactor ?? defaultTextRedactor);
          deps.emit({
            ts: new Date(now()).toISOString(),
            kind: 'auth',
            method: names.method,
            client: { id: 'unauthenticated' },
            server: { name: cfg.upstream.name, transport: cfg.upstream.transport },
            outcome: 'auth_failed',
            auth: { method: cfg.apiKey ? 'api_key' : 'none', result: 'failure', reason: v.reason },
            error: { code: 'AUDIT_ERR_UNAUTHENTICATED', message: v.reason },
            duration_ms: 0,
            request_bytes: Buffer.byteLength(JSON.stringify(msg)),
            response_bytes: 0,
            labels: { downstream: 'stdio', ...names.labels },
          });
          void downstream.send({
            jsonrpc: '2.0',
            id: msg.id,
            error: {
              code: -32001,
              message:
                'unauthenticated: the gateway needs a valid MCP_AUDIT_GATEWAY_API_KEY in its environment',
            },
          });
        };
        await downstream.start();
        return;
      }
      session = new ProxySession({
        upstream: cfg.upstream,
        upstreamTransport: deps.connect(cfg.upstream),
        downstream,
        ctx: { identity: v.identity, downstream: 'stdio' },
        deps: {
          emit: deps.emit,
          guard: deps.guard,
          limiter: deps.limiter,
          metrics: deps.metrics,
          log: deps.log,
          redactor: deps.redactor,
          now,
        },
      });
      session.onclose = () => void stop('session closed');
      await session.start();
    },
    stop,
    health: () => ({ ok: !stopped, details: { authenticated: session !== undefined } }),
  };
}
