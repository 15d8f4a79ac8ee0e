import { Counter, Gauge, Histogram, type Registry } from '@mcp-audit/service-kit';

export interface GatewayMetrics {
  requests: Counter<'upstream' | 'method' | 'outcome'>;
  duration: Histogram<'upstream' | 'method'>;
  sessions: Gauge<'upstream'>;
  authFailures: Counter<'reason'>;
  toolChanges: Counter<'upstream'>;
}

/** Defined once per service (STYLE.md); label values are bounded (upstreams, methods, outcomes). */
export function createGatewayMetrics(registry: Registry): GatewayMetrics {
  return {
    requests: new Counter({
      name: 'mcp_audit_gateway_requests_total',
      help: 'JSON-RPC requests from clients, by upstream, method and outcome',
      labelNames: ['upstream', 'method', 'outcome'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'mcp_audit_gateway_request_duration_seconds',
      help: 'Time from a client request to the upstream response',
      labelNames: ['upstream', 'method'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    sessions: new Gauge({
      name: 'mcp_audit_gateway_sessions',
      help: 'Open client sessions (one upstream session each)',
      labelNames: ['upstream'],
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'mcp_audit_gateway_auth_failures_total',
      help: 'Refused credentials, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    toolChanges: new Counter({
      name: 'mcp_audit_gateway_tool_definition_changes_total',
      help: 'Tool definition hash changes seen in listings',
      labelNames: ['upstream'],
      registers: [registry],
    }),
  };
}

/** Methods outside the MCP spec's set are counted as `other`, so clients cannot grow the label set. */
const KNOWN_METHODS = new Set([
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'tasks/get',
  'tasks/list',
  'tasks/result',
  'tasks/cancel',
]);
export const methodLabel = (m: string): string => (KNOWN_METHODS.has(m) ? m : 'other');
