/**
 * Operator CLI for the rug-pull guard, through the running gateway's admin endpoint:
 *   node services/gateway/dist/src/approve.cli.js list
 *   node services/gateway/dist/src/approve.cli.js approve <upstream> <tool>
 * Env: MCP_AUDIT_GATEWAY_URL (default http://127.0.0.1:9473), MCP_AUDIT_GATEWAY_ADMIN_KEY (a key
 * with the admin scope).
 */
const base = (process.env.MCP_AUDIT_GATEWAY_URL ?? 'http://127.0.0.1:9473').replace(/\/$/, '');
const key = process.env.MCP_AUDIT_GATEWAY_ADMIN_KEY;
const [cmd, upstream, tool] = process.argv.slice(2);
if (!key) {
  process.stderr.write('set MCP_AUDIT_GATEWAY_ADMIN_KEY to a gateway key with the admin scope\n');
  process.exit(2);
}
const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
let res: Response;
if (cmd === 'list') res = await fetch(`${base}/admin/tools`, { headers });
else if (cmd === 'approve' && upstream && tool)
  res = await fetch(`${base}/admin/tools/approve`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ upstream, tool }),
  });
else {
  process.stderr.write('usage: approve.cli.js list | approve <upstream> <tool>\n');
  process.exit(2);
}
process.stdout.write(`${JSON.stringify(await res.json(), null, 2)}\n`);
process.exit(res.ok ? 0 : 1);
