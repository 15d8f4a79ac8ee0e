/**
 * npm run bench:gateway — tool-call latency (p50/p99, sequential) and calls/s (concurrent) against
 * server-everything directly and through the gateway, in the same run, for both upstream
 * transports: stdio (direct: the SDK client spawns it; gateway: HTTP in, stdio out) and Streamable
 * HTTP. The gateway is its compiled main.js with auditing on (SDK emitter, Kafka sink to a bench
 * topic). Prints figures; asserts nothing about speed (shared, noisy machines).
 *
 *   BENCH_CALLS (default 1000 per phase)  BENCH_CONCURRENCY (default 8)
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  REPO_ROOT,
  brokers,
  createTestTopics,
  env,
  kafka,
  startService,
  suffix,
  waitFor,
} from '../lib/index.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const EVERYTHING = `${REPO_ROOT}node_modules/@modelcontextprotocol/server-everything/dist/index.js`;

/** Nearest-rank quantile of sorted values. */
const quantileSorted = (v: number[], q: number) => v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)]!;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Figures {
  p50: number;
  p99: number;
  rate: number;
}

async function measure(transport: Transport): Promise<Figures> {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(transport);
  const callOnce = () => client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
  for (let i = 0; i < 50; i++) await callOnce(); // warm-up
  const lat: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    await callOnce();
    lat.push(performance.now() - t0);
  }
  lat.sort((a, b) => a - b);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < CALLS) await callOnce();
    }),
  );
  const rate = CALLS / ((performance.now() - t0) / 1000);
  await client.close();
  return { p50: quantileSorted(lat, 0.5), p99: quantileSorted(lat, 0.99), rate };
}

async function main() {
  const tag = `bench-${suffix()}`;
  const admin = kafka().admin();
  await admin.connect();
  const topics = await createTestTopics(admin, 'gwbench', 1);

  const httpPort = await freePort();
  const everything = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], {
    env: { PATH: process.env.PATH ?? '', PORT: String(httpPort) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let up = false;
  everything.stderr!.on('data', (b: Buffer) => void (/listening on port/.test(b.toString()) && (up = true)));
  await waitFor(() => up, { what: 'server-everything streamableHttp' });
  const everythingUrl = `http://127.0.0.1:${httpPort}/mcp`;

  const key = `mcpg_${createHash('sha256').update(`${tag}-${Date.now()}`).digest('base64url')}`;
  const dir = `${REPO_ROOT}.local/test-logs/${tag}`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    `${dir}/gateway.json`,
    JSON.stringify({
      gateway_id: tag,
      upstreams: [
        { name: 'everything-stdio', transport: 'stdio', command: 'node', args: [EVERYTHING, 'stdio'] },
        { name: 'everything-http', transport: 'http', url: everythingUrl },
      ],
      clients: [{ id: tag, sha256: createHash('sha256').update(key).digest('hex') }],
      guard: { enabled: true, state_file: `${dir}/tools.state.json` },
      rate_limit: { per_second: 100_000, burst: 100_000 },
    }),
  );
  const port = await freePort();
  const gateway = startService(
    'gateway',
    {
      MCP_AUDIT_GATEWAY_CONFIG: `${dir}/gateway.json`,
      MCP_AUDIT_GATEWAY_PORT: String(port),
      MCP_AUDIT_GATEWAY_OPS_PORT: '0',
      MCP_AUDIT_SDK_SINK: 'kafka',
      MCP_AUDIT_SDK_KAFKA_TOPIC: topics.events,
      MCP_AUDIT_KAFKA_BROKERS: brokers.join(','),
      MCP_AUDIT_REDACTION_KEY: env.MCP_AUDIT_REDACTION_KEY ?? 'bench-redaction-key-0123456789',
      MCP_AUDIT_LOG_LEVEL: 'warn',
    },
    tag,
  );
  const base = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => (await fetch(`${base}/.well-known/oauth-protected-resource`).catch(() => undefined))?.ok,
    {
      what: 'gateway',
    },
  );
  const viaGateway = (u: string) =>
    new StreamableHTTPClientTransport(new URL(`${base}/mcp/${u}`), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    });

  const results: Array<[string, Figures, Figures]> = [];
  try {
    const directStdio = await measure(
      new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'], stderr: 'ignore' }),
    );
    results.push(['stdio upstream', directStdio, await measure(viaGateway('everything-stdio'))]);
    const directHttp = await measure(new StreamableHTTPClientTransport(new URL(everythingUrl)));
    results.push(['http upstream', directHttp, await measure(viaGateway('everything-http'))]);
  } finally {
    await gateway.stop();
    everything.kill('SIGINT');
    await admin.deleteTopics({ topics: [topics.events, topics.dlq] }).catch(() => undefined);
    await admin.disconnect();
  }

  const f = (n: number) => n.toFixed(2);
  console.log(
    `gateway benchmark: ${CALLS} sequential calls of get-sum per phase (latency), ${CALLS} calls at concurrency ${CONCURRENCY} (calls/s); ${os.cpus().length} CPUs; node ${process.version}`,
  );
  console.log('| upstream | path | p50 ms | p99 ms | calls/s |');
  console.log('|---|---|---|---|---|');
  for (const [name, d, g] of results) {
    console.log(`| ${name} | direct | ${f(d.p50)} | ${f(d.p99)} | ${d.rate.toFixed(0)} |`);
    console.log(`| ${name} | through the gateway | ${f(g.p50)} | ${f(g.p99)} | ${g.rate.toFixed(0)} |`);
    console.log(
      `| ${name} | overhead | +${f(g.p50 - d.p50)} | +${f(g.p99 - d.p99)} | ${(((g.rate - d.rate) / d.rate) * 100).toFixed(0)}% |`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
