import { getMaxListeners, setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Logger } from '@mcp-audit/service-kit';
import type { UpstreamConfig } from './config.js';

/** Opens one upstream session: a child process per session for stdio, an HTTP session for http. */
export type UpstreamConnector = (upstream: UpstreamConfig) => Transport;

type FetchLike = (url: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * A `fetch` for the SDK's StreamableHTTPClientTransport on node:http(s) with a keep-alive agent.
 * The transport only needs status, headers and a web body stream; undici's WHATWG fetch (Request/
 * Response objects, body streams and their bookkeeping) cost about a millisecond of CPU per proxied
 * call on the benchmark machine, a quarter of the gateway's work per call. Redirects are returned,
 * not followed: the transport follows them itself (same origin only).
 */
export function createUpstreamFetch(): FetchLike & { close(): void } {
  // Keep-alive, and no Nagle delay on the small JSON-RPC writes. No cap on sockets per upstream:
  // every session holds one for its GET stream, so a cap would queue other sessions' POSTs behind
  // those streams (max_sessions bounds them instead).
  const agentOpts = { keepAlive: true, noDelay: true };
  const agents = { 'http:': new http.Agent(agentOpts), 'https:': new https.Agent(agentOpts) };
  const fetchLike = (input: string | URL, init: RequestInit = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(input);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        reject(new TypeError(`unsupported upstream URL scheme ${url.protocol}`));
        return;
      }
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => (headers[k] = v));
      const body = init.body;
      if (body !== undefined && body !== null && typeof body !== 'string')
        throw new TypeError('upstream request bodies are JSON strings');
      if (typeof body === 'string') headers['content-length'] = String(Buffer.byteLength(body));
      const signal = init.signal ?? undefined;
      // The transport shares one AbortSignal across its session's requests (to abort them all on
      // close). node:http removes its listener when the request ends (undici's fetch only when the
      // Request is garbage-collected: thousands pile up and Node warns), so listeners = requests in
      // flight; allow a busy session more of those than the default warning threshold of 10.
      if (signal && getMaxListeners(signal) < 1000) setMaxListeners(1000, signal);
      const request = url.protocol === 'https:' ? https.request : http.request;
      const req = request(
        url,
        { method: init.method ?? 'GET', headers, agent: agents[url.protocol], signal },
        (res) => {
          const h = new Headers();
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
            h.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
          const status = res.statusCode ?? 502;
          const empty = status === 204 || status === 304 || init.method === 'HEAD';
          if (empty) res.resume();
          resolve(
            new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
              status,
              statusText: res.statusMessage ?? '',
              headers: h,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  return Object.assign(fetchLike, {
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  });
}

export function createUpstreamConnector(opts: {
  log: Logger;
  /** Resolved `env:NAME` header values per http upstream. */
  headers?: Record<string, Record<string, string>>;
  /** Log the child's stderr at info (else debug). */
  verboseStderr?: boolean;
  /** The fetch HTTP upstream sessions use (default: one createUpstreamFetch() shared by all). */
  fetch?: FetchLike;
}): UpstreamConnector {
  let fetchLike = opts.fetch;
  return (upstream) => {
    if (upstream.transport === 'http') {
      const headers = opts.headers?.[upstream.name] ?? upstream.headers;
      fetchLike ??= createUpstreamFetch();
      return new StreamableHTTPClientTransport(new URL(upstream.url), {
        requestInit: { headers },
        fetch: fetchLike,
      });
    }
    const t = new StdioClientTransport({
      // `node` means this Node, whatever PATH says, so the upstream runs on the version we test with.
      command: upstream.command === 'node' ? process.execPath : upstream.command,
      args: upstream.args,
      env: upstream.env,
      ...(upstream.cwd !== undefined ? { cwd: upstream.cwd } : {}),
      // NOTE: piped, never inherited: a stdio gateway's own stdout/stderr must stay clean, and an
      // unread pipe would block the child once its buffer fills.
      stderr: 'pipe',
    });
    const stderr = t.stderr;
    if (stderr) {
      const log = opts.log.child({ upstream: upstream.name });
      const rl = createInterface({ input: stderr as unknown as NodeJS.ReadableStream });
      rl.on('line', (line) => {
        if (opts.verboseStderr) log.info({ line: line.slice(0, 2000) }, 'upstream stderr');
        else log.debug({ line: line.slice(0, 2000) }, 'upstream stderr');
      });
    }
    return t;
  };
}
