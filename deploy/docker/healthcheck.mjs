/* global fetch, AbortSignal */
// The images' HEALTHCHECK (deploy/docker/Dockerfile): GET /healthz on the service's ops port, which
// its own environment sets (MCP_AUDIT_<SERVICE>_PORT, or _OPS_PORT where the service has a second
// listener), with the same defaults as the services' config. Exit 0 when healthy.
const OPS = {
  collector: ['MCP_AUDIT_COLLECTOR_PORT', 9470],
  ingester: ['MCP_AUDIT_INGESTER_PORT', 9471],
  notifier: ['MCP_AUDIT_NOTIFIER_PORT', 9472],
  detector: ['MCP_AUDIT_DETECTOR_PORT', 9474],
  api: ['MCP_AUDIT_API_OPS_PORT', 9476],
  retention: ['MCP_AUDIT_RETENTION_PORT', 9477],
  gateway: ['MCP_AUDIT_GATEWAY_OPS_PORT', 9478],
};
const service = process.env.MCP_AUDIT_SERVICE ?? '';
const entry = OPS[service];
if (!entry) {
  process.stderr.write(`healthcheck: MCP_AUDIT_SERVICE must be one of ${Object.keys(OPS).join(', ')}\n`);
  process.exit(2);
}
const port = Number(process.env[entry[0]] || entry[1]);
try {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_500) });
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  process.stderr.write(`healthcheck: ${service} on port ${port}: ${err.message}\n`);
  process.exit(1);
}
