/**
 * Operator CLI for the rug-pull guard, through the running gateway's admin endpoint:
 *   node services/gateway/dist/src/approve.cli.js list
 *   node services/gateway/dist/src/approve.cli.js approve <upstream> <tool> [<current_hash>]
 * With the hash `list` shows, the gateway approves only that definition (409 if it has changed
 * since). Env: MCP_AUDIT_GATEWAY_URL (default http://127.0.0.1:9473), MCP_AUDIT_GATEWAY_ADMIN_KEY (a key
 * with the admin scope).
 */
const base = (process.env.MCP_AUDIT_GATEWAY_URL ?? 'http://127.0.0.1:9473').replace(/\/$/, '');
const key = process.env.MCP_AUDIT_GATEWAY_ADMIN_KEY;
const [cmd, upstream, tool, hash, ...extra] = process.argv.slice(2);
if (!key) {
  process.stderr.write('set MCP_AUDIT_GATEWAY_ADMIN_KEY to a gateway key with the admin scope\n');
  process.exit(2);
}
const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
let request: Promise<Response>;
if (cmd === 'list') request = fetch(`${base}/admin/tools`, { headers });
else if (cmd === 'approve' && upstream && tool && extra.length === 0)
  request = fetch(`${base}/admin/tools/approve`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ upstream, tool, ...(hash ? { definition_hash: hash } : {}) }),
  });
else {
  process.stderr.write('usage: approve.cli.js list | approve <upstream> <tool> [<current_hash from list>]\n');
  process.exit(2);
}
let res: Response;
try {
  res = await request;
} catch (err) {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  process.stderr.write(
    `cannot reach the gateway at ${base} (MCP_AUDIT_GATEWAY_URL): ${cause?.code ?? cause?.message ?? (err as Error).message}\n`,
  );
  process.exit(1);
}
const text = await res.text();
let shown = text;
try {
  shown = JSON.stringify(JSON.parse(text), null, 2);
} catch {
  // Not JSON (a proxy in between?): print it as it came.
}
if (res.ok) process.stdout.write(`${shown}\n`);
if (res.ok && cmd === 'approve' && !hash)
  process.stderr.write(
    'note: approved whatever definition was current at the gateway; pass the current_hash from `list` to approve only the one you reviewed\n',
  );
else process.stderr.write(`gateway answered HTTP ${res.status}:\n${shown}\n`);
process.exit(res.ok ? 0 : 1);
