import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createUpstreamFetch } from '@mcp-audit/gateway';
import { REPO_ROOT, suffix, waitFor } from './env.js';
import { brokers, env } from './pipeline.js';
import { listeningPortsOfPid, portAnswering } from './proc.js';

/** The reference MCP server the benches proxy (an npm package already in the tree). */
export const EVERYTHING = `${REPO_ROOT}node_modules/@modelcontextprotocol/server-everything/dist/index.js`;

/** server-everything in Streamable HTTP mode on a port the OS picks; its URL and process. */
export async function startEverythingHttp(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], {
    env: { PATH: process.env.PATH ?? '', PORT: '0' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let up = false;
  child.stderr!.on('data', (b: Buffer) => void (/listening on port/.test(b.toString()) && (up = true)));
  await waitFor(() => up, { what: 'server-everything streamableHttp', timeoutMs: 30_000 });
  // It logs the 0 it was given; the port it got is read from /proc.
  const [port] = await listeningPortsOfPid(child.pid!);
  return { url: `http://127.0.0.1:${port}/mcp`, child };
}

/**
 * The SDK's HTTP client transport passes one AbortSignal (its session's) to every fetch. Node's
 * built-in fetch (undici) adds an abort listener to it per request and removes it only when that
 * Request object is garbage-collected, so a client making thousands of calls piles up thousands of
 * listeners and Node prints MaxListenersExceededWarning. The gateway's upstream fetch (node:http,
 * keep-alive) removes its listener when the request ends; bench clients use it on every HTTP path.
 */
export function createBenchClientFetch() {
  const clientFetch = createUpstreamFetch();
  return {
    transport: (url: string, headers: Record<string, string> = {}) =>
      new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers }, fetch: clientFetch }),
    close: () => clientFetch.close(),
  };
}

export interface GatewayProcess {
  child: ChildProcess;
  /** http://127.0.0.1:<port> of its MCP front. */
  base: string;
  /** A client key with the gateway's default scopes. */
  key: string;
  dir: string;
  /** The main.js it runs (a stdio gateway of the same build runs it too). */
  main: string;
  /** Environment the gateway ran with (Kafka sink, redaction key, config): a stdio gateway reuses it. */
  auditEnv: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The compiled gateway (main.js) as a child process with auditing on: the SDK emitter's Kafka sink to
 * `eventsTopic`, the guard on, one client key, the given upstreams; both listeners on port 0, logging
 * at warn to <dir>/gateway.log.
 */
export async function startGatewayProcess(opts: {
  tag: string;
  upstreams: unknown[];
  eventsTopic: string;
  main?: string;
  /** Node flags before main.js (e.g. --cpu-prof, which NODE_OPTIONS does not allow). */
  nodeArgs?: string[] | undefined;
}): Promise<GatewayProcess> {
  const { tag } = opts;
  const key = `mcpg_${createHash('sha256').update(`${tag}-${Date.now()}-${suffix()}`).digest('base64url')}`;
  const dir = `${REPO_ROOT}.local/test-logs/${tag}`;
  mkdirSync(dir, { recursive: true });
  const config = `${dir}/gateway.json`;
  writeFileSync(
    config,
    JSON.stringify({
      gateway_id: tag,
      upstreams: opts.upstreams,
      clients: [{ id: tag, sha256: createHash('sha256').update(key).digest('hex') }],
      guard: { enabled: true, state_file: `${dir}/tools.state.json` },
      rate_limit: { per_second: 100_000, burst: 100_000 },
    }),
  );
  const auditEnv = {
    MCP_AUDIT_GATEWAY_CONFIG: config,
    MCP_AUDIT_SDK_SINK: 'kafka',
    MCP_AUDIT_SDK_KAFKA_TOPIC: opts.eventsTopic,
    MCP_AUDIT_KAFKA_BROKERS: brokers.join(','),
    MCP_AUDIT_REDACTION_KEY: env.MCP_AUDIT_REDACTION_KEY ?? 'bench-redaction-key-0123456789',
    MCP_AUDIT_LOG_LEVEL: 'warn',
  };
  const main = opts.main ?? `${REPO_ROOT}services/gateway/dist/src/main.js`;
  const log = createWriteStream(`${dir}/gateway.log`);
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), main], {
    env: {
      PATH: process.env.PATH ?? '',
      ...auditEnv,
      MCP_AUDIT_GATEWAY_PORT: '0',
      MCP_AUDIT_GATEWAY_OPS_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // Both of its listeners are on port 0 and it logs at warn: its own port is the one that answers the
  // protected-resource metadata.
  const port = await portAnswering(child.pid!, '/.well-known/oauth-protected-resource');
  const base = `http://127.0.0.1:${port}`;
  return {
    child,
    base,
    key,
    dir,
    main,
    auditEnv,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
