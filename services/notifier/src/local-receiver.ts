/**
 * A local webhook receiver a newcomer can watch: `npm start` runs it on 127.0.0.1:9479 and the
 * local routing file sends every alert there. It verifies each delivery's signature and timestamp
 * exactly as a real receiver should (README: "Verifying webhook signatures") and prints one line
 * per alert to .local/log/receiver.log:  tail -f .local/log/receiver.log
 */
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { HEADER_SIGNATURE, HEADER_TIMESTAMP, verifyWebhook } from './webhook.payload.js';

const port = Number(process.env.MCP_AUDIT_RECEIVER_PORT ?? 9479);
// Loopback unless told otherwise (docker-compose listens on the container network).
const host = process.env.MCP_AUDIT_RECEIVER_HOST || '127.0.0.1';
const secretFile = process.env.MCP_AUDIT_RECEIVER_SECRET_FILE;
if (!secretFile) {
  process.stderr.write('MCP_AUDIT_RECEIVER_SECRET_FILE is required (the webhook signing secret)\n');
  process.exit(1);
}
const secret = readFileSync(secretFile, 'utf8').trim();
const seen = new Set<string>();
const MAX_BODY = 1024 * 1024;

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') return void res.writeHead(200).end('ok');
  if (req.method !== 'POST' || req.url !== '/webhook') return void res.writeHead(404).end();
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_BODY) req.destroy();
    else chunks.push(c);
  });
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const check = verifyWebhook({
      secret,
      timestamp: req.headers[HEADER_TIMESTAMP.toLowerCase()] as string | undefined,
      signature: req.headers[HEADER_SIGNATURE.toLowerCase()] as string | undefined,
      body,
    });
    if (!check.ok) {
      process.stdout.write(`${new Date().toISOString()} REJECTED (${check.reason})\n`);
      return void res.writeHead(401).end();
    }
    const msg = JSON.parse(body) as Record<string, unknown> & { delivery_id: string; type: string };
    const repeat = seen.has(msg.delivery_id);
    seen.add(msg.delivery_id);
    const inner = (msg[msg.type] ?? {}) as Record<string, unknown>;
    const line = [
      new Date().toISOString(),
      msg.type,
      repeat ? '(repeat delivery)' : '',
      String(inner.severity ?? ''),
      String(inner.detector ?? ''),
      String(inner.client_id ?? ''),
      String(inner.title ?? inner.status ?? ''),
      String(msg.console_url ?? ''),
    ]
      .filter(Boolean)
      .join('  ');
    process.stdout.write(`${line}\n`);
    res.writeHead(204).end();
  });
});

server.listen(port, host, () =>
  process.stdout.write(`local webhook receiver on http://${host}:${port}/webhook\n`),
);
for (const sig of ['SIGTERM', 'SIGINT'] as const)
  process.once(sig, () => server.close(() => process.exit(0)));
