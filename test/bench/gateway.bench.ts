/**
 * npm run bench:gateway — what the gateway costs per tool call, against server-everything's
 * `get-sum`, with auditing on (the compiled main.js: SDK emitter, Kafka sink to a bench topic,
 * guard on). Each comparison keeps the client's transport the same on both sides:
 *
 *   Streamable HTTP client:  direct → server-everything (streamableHttp)
 *                            pass-through → a bare node:http reverse proxy (what one loopback hop costs)
 *                            gateway → HTTP upstream (server-everything streamableHttp)
 *                            gateway → stdio upstream (for reference: the upstream speaks stdio)
 *   stdio client:            direct → server-everything (stdio child)
 *                            gateway → the gateway in stdio mode (child) → server-everything (stdio)
 *
 * All clients are connected and warmed up first (the JIT needs a few hundred calls per path), then
 * the sequential latency phases are interleaved in rounds so a change in the machine's load hits
 * every path alike. Then calls/s at a fixed concurrency, and the gateway process's CPU per call
 * (Linux /proc). Prints figures; asserts nothing about speed (shared, noisy machines).
 *
 *   BENCH_CALLS (sequential calls per path, default 2000)  BENCH_ROUNDS (default 4)
 *   BENCH_WARMUP (calls per path, default 500)  BENCH_CONCURRENCY (default 8)
 *   BENCH_THROUGHPUT_CALLS (default 2000)  BENCH_GATEWAY_MAIN (default services/gateway/dist/src/main.js)
 *   BENCH_GATEWAY_NODE_ARGS: node flags for the HTTP gateway process only (NODE_OPTIONS refuses --cpu-prof), e.g.
 *     '--cpu-prof --cpu-prof-dir=/tmp/prof' (the profile is written when the bench stops it)
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { createTestTopics, kafka, suffix } from '../lib/index.js';
import {
  EVERYTHING,
  createBenchClientFetch,
  startEverythingHttp,
  startGatewayProcess,
} from '../lib/gateway-proc.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 4));
const WARMUP = Number(process.env.BENCH_WARMUP ?? 500);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const THROUGHPUT_CALLS = Number(process.env.BENCH_THROUGHPUT_CALLS ?? 2000);
/** Another build of the gateway (e.g. a copy of dist/ from before a change) to compare against. */
const GATEWAY_MAIN = process.env.BENCH_GATEWAY_MAIN;

/** Nearest-rank quantile of sorted values. */
const quantileSorted = (v: number[], q: number) => v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)]!;

/** User + system CPU of a process in ms (Linux), or undefined elsewhere. */
function cpuMs(pid: number | null | undefined): number | undefined {
  const file = `/proc/${pid}/stat`;
  if (!pid || !existsSync(file)) return undefined;
  const fields = readFileSync(file, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

const clientFetch = createBenchClientFetch();
const httpClientTransport = clientFetch.transport;

/** A bare reverse proxy (no MCP, no auth, no audit): the cost of one more loopback HTTP hop. */
function passThrough(target: URL) {
  const agent = new http.Agent({ keepAlive: true, noDelay: true });
  return http.createServer((req, res) => {
    const up = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: req.method,
        headers: { ...req.headers, host: target.host },
        agent,
      },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
}

interface Path {
  group: 'Streamable HTTP' | 'stdio';
  name: string;
  client: Client;
  /** The gateway process serving this path, for CPU per call. */
  gatewayPid?: () => number | null | undefined;
  lat: number[];
  cpu: number;
  rate?: number;
}

async function connect(
  group: Path['group'],
  name: string,
  transport: Transport,
  gatewayPid?: () => number | null | undefined,
): Promise<Path> {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(transport);
  return { group, name, client, gatewayPid, lat: [], cpu: 0 };
}

const callOnce = (c: Client) => c.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });

async function sequential(p: Path, n: number) {
  const pid = p.gatewayPid?.();
  const c0 = cpuMs(pid);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await callOnce(p.client);
    p.lat.push(performance.now() - t0);
  }
  const c1 = cpuMs(pid);
  if (c0 !== undefined && c1 !== undefined) p.cpu += c1 - c0;
}

async function concurrent(p: Path) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < THROUGHPUT_CALLS) await callOnce(p.client);
    }),
  );
  p.rate = THROUGHPUT_CALLS / ((performance.now() - t0) / 1000);
}

async function main() {
  const tag = `bench-${suffix()}`;
  const admin = kafka().admin();
  await admin.connect();
  const topics = await createTestTopics(admin, 'gwbench', 1);
  const children: ChildProcess[] = [];

  const everything = await startEverythingHttp();
  children.push(everything.child);
  const everythingUrl = everything.url;

  const proxy = passThrough(new URL(everythingUrl));
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/mcp`;

  const gateway = await startGatewayProcess({
    tag,
    eventsTopic: topics.events,
    upstreams: [
      { name: 'everything-stdio', transport: 'stdio', command: 'node', args: [EVERYTHING, 'stdio'] },
      { name: 'everything-http', transport: 'http', url: everythingUrl },
    ],
    main: GATEWAY_MAIN,
    nodeArgs: process.env.BENCH_GATEWAY_NODE_ARGS?.split(' ').filter(Boolean),
  });
  const { base, key, dir, auditEnv } = gateway;
  const viaGateway = (u: string) =>
    httpClientTransport(`${base}/mcp/${u}`, { authorization: `Bearer ${key}` });
  const stdioGateway = new StdioClientTransport({
    command: process.execPath,
    args: [gateway.main],
    env: {
      PATH: process.env.PATH ?? '',
      ...auditEnv,
      MCP_AUDIT_GATEWAY_MODE: 'stdio',
      MCP_AUDIT_GATEWAY_STDIO_UPSTREAM: 'everything-stdio',
      MCP_AUDIT_GATEWAY_API_KEY: key,
    },
    stderr: 'ignore',
  });

  const load0 = os.loadavg();
  const paths: Path[] = [];
  try {
    paths.push(await connect('Streamable HTTP', 'direct', httpClientTransport(everythingUrl)));
    paths.push(await connect('Streamable HTTP', 'pass-through proxy', httpClientTransport(proxyUrl)));
    const gwPid = () => gateway.child.pid;
    paths.push(
      await connect('Streamable HTTP', 'gateway → HTTP upstream', viaGateway('everything-http'), gwPid),
    );
    paths.push(
      await connect('Streamable HTTP', 'gateway → stdio upstream', viaGateway('everything-stdio'), gwPid),
    );
    paths.push(
      await connect(
        'stdio',
        'direct',
        new StdioClientTransport({
          command: process.execPath,
          args: [EVERYTHING, 'stdio'],
          stderr: 'ignore',
        }),
      ),
    );
    paths.push(
      await connect('stdio', 'gateway (stdio mode) → stdio upstream', stdioGateway, () => stdioGateway.pid),
    );

    for (const p of paths) for (let i = 0; i < WARMUP; i++) await callOnce(p.client);
    const perRound = Math.ceil(CALLS / ROUNDS);
    for (let r = 0; r < ROUNDS; r++) for (const p of paths) await sequential(p, perRound);
    for (const p of paths) await concurrent(p);
  } finally {
    await Promise.allSettled(paths.map((p) => p.client.close()));
    await gateway.stop();
    proxy.close();
    clientFetch.close();
    for (const c of children) c.kill('SIGINT');
    await admin.deleteTopics({ topics: [topics.events, topics.dlq] }).catch(() => undefined);
    await admin.disconnect();
  }
  const load1 = os.loadavg();

  const f = (n: number) => n.toFixed(2);
  const q = (p: Path) => {
    const v = [...p.lat].sort((a, b) => a - b);
    return { p50: quantileSorted(v, 0.5), p95: quantileSorted(v, 0.95), p99: quantileSorted(v, 0.99) };
  };
  const n = paths[0]!.lat.length;
  console.log(
    `gateway benchmark: get-sum, ${WARMUP} warm-up calls per path, then ${n} sequential calls per path in ` +
      `${ROUNDS} interleaved rounds (latency), then ${THROUGHPUT_CALLS} calls at concurrency ${CONCURRENCY} ` +
      `(calls/s). ${os.cpus().length} CPUs, node ${process.version}, load average ` +
      `${load0.map((l) => l.toFixed(1)).join(' ')} before, ${load1.map((l) => l.toFixed(1)).join(' ')} after.`,
  );
  console.log('| client transport | path | p50 ms | p95 ms | p99 ms | calls/s | gateway CPU ms/call |');
  console.log('|---|---|---|---|---|---|---|');
  for (const p of paths) {
    const s = q(p);
    const cpu = p.gatewayPid ? f(p.cpu / p.lat.length) : '';
    console.log(
      `| ${p.group} | ${p.name} | ${f(s.p50)} | ${f(s.p95)} | ${f(s.p99)} | ${p.rate!.toFixed(0)} | ${cpu} |`,
    );
  }
  console.log(
    `\ngateway log: ${dir}/gateway.log\n\noverhead against the direct path with the same client transport:`,
  );
  console.log('| client transport | path | p50 | p95 | p99 | calls/s |');
  console.log('|---|---|---|---|---|---|');
  const over = (g: Path, d: Path) => {
    const a = q(g);
    const b = q(d);
    const cell = (x: number, y: number) =>
      `${x >= y ? '+' : '−'}${f(Math.abs(x - y))} ms (×${(x / y).toFixed(2)})`;
    console.log(
      `| ${g.group} | ${g.name} | ${cell(a.p50, b.p50)} | ${cell(a.p95, b.p95)} | ${cell(a.p99, b.p99)} | ` +
        `${(((g.rate! - d.rate!) / d.rate!) * 100).toFixed(0)}% (×${(g.rate! / d.rate!).toFixed(2)}) |`,
    );
  };
  for (const group of ['Streamable HTTP', 'stdio'] as const) {
    const inGroup = paths.filter((p) => p.group === group);
    const direct = inGroup.find((p) => p.name === 'direct')!;
    for (const p of inGroup) if (p !== direct) over(p, direct);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
