/**
 * Operator CLI for the rug-pull guard, through the running gateway's admin endpoint:
 *   node services/gateway/dist/src/approve.cli.js list
 *   node services/gateway/dist/src/approve.cli.js diff <upstream> <tool>
 *   node services/gateway/dist/src/approve.cli.js approve <upstream> <tool> [<current_hash>]
 * `list` prints the gateway's JSON (hashes and the recorded definitions); `diff` prints what
 * changed between the approved and the current definition. `approve` prints that review on stderr
 * first, then approves exactly the definition it showed (or the `<current_hash>` given): the
 * gateway answers 409 if the tool has changed since. Env: MCP_AUDIT_GATEWAY_URL (default
 * http://127.0.0.1:9473), MCP_AUDIT_GATEWAY_ADMIN_KEY (a key with the admin scope).
 */
import { describeReview, type ReviewEntry } from './definition-diff.js';

const base = (process.env.MCP_AUDIT_GATEWAY_URL ?? 'http://127.0.0.1:9473').replace(/\/$/, '');
const key = process.env.MCP_AUDIT_GATEWAY_ADMIN_KEY;
const [cmd, upstream, tool, hash, ...extra] = process.argv.slice(2);
const USAGE =
  'usage: approve.cli.js list | diff <upstream> <tool> | approve <upstream> <tool> [<current_hash from list>]\n';

if (!key) {
  process.stderr.write('set MCP_AUDIT_GATEWAY_ADMIN_KEY to a gateway key with the admin scope\n');
  process.exit(2);
}
const valid =
  cmd === 'list' ||
  (cmd === 'diff' && upstream !== undefined && tool !== undefined && hash === undefined) ||
  (cmd === 'approve' && upstream !== undefined && tool !== undefined && extra.length === 0);
if (!valid) {
  process.stderr.write(USAGE);
  process.exit(2);
}
const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

async function call(path: string, init: RequestInit = {}): Promise<{ res: Response; text: string }> {
  try {
    const res = await fetch(`${base}${path}`, { ...init, headers });
    return { res, text: await res.text() };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    process.stderr.write(
      `cannot reach the gateway at ${base} (MCP_AUDIT_GATEWAY_URL): ${cause?.code ?? cause?.message ?? (err as Error).message}\n`,
    );
    process.exit(1);
  }
}

const pretty = (text: string) => {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text; // Not JSON (a proxy in between?): as it came.
  }
};

function failed(r: { res: Response; text: string }): never {
  process.stderr.write(`gateway answered HTTP ${r.res.status}:\n${pretty(r.text)}\n`);
  process.exit(1);
}

const listing = await call('/admin/tools');
if (!listing.res.ok) failed(listing);
if (cmd === 'list') {
  process.stdout.write(`${pretty(listing.text)}\n`);
  process.exit(0);
}

const entry = (JSON.parse(listing.text) as { tools?: ReviewEntry[] }).tools?.find(
  (t) => t.upstream === upstream && t.tool === tool,
);
if (cmd === 'diff') {
  if (!entry) {
    process.stderr.write(`no tool "${tool}" seen on upstream "${upstream}"\n`);
    process.exit(1);
  }
  process.stdout.write(describeReview(entry));
  process.exit(0);
}

// approve: show what is being approved, then approve only that (the gateway checks the hash).
if (entry) process.stderr.write(describeReview(entry));
if (entry && hash && hash !== entry.current_hash)
  process.stderr.write(
    `warning: ${hash} is not the current definition hash (${entry.current_hash}); the gateway will refuse it\n`,
  );
const approving = hash ?? entry?.current_hash;
const result = await call('/admin/tools/approve', {
  method: 'POST',
  body: JSON.stringify({ upstream, tool, ...(approving ? { definition_hash: approving } : {}) }),
});
if (!result.res.ok) failed(result);
process.stdout.write(`${pretty(result.text)}\n`);
if (!hash)
  process.stderr.write(
    `note: approved the definition shown above (${approving}); pass its current_hash to approve only the one you reviewed earlier\n`,
  );
process.exit(0);
