import { getMaxListeners, setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StringDecoder } from 'node:string_decoder';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { JSONRPCMessageSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
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

/** What the fast path reads of the SDK transport's state (private in its typings, stable in 1.x). */
interface TransportInternals {
  _url: URL;
  _sessionId?: string;
  _authProvider?: unknown;
  _abortController?: AbortController;
  _commonHeaders(): Promise<Headers>;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A JSON-RPC message from the upstream, validated as the SDK validates it. The common case, a result
 * response (`jsonrpc`, `id`, `result` and nothing else, no `_meta`), is checked by hand: zod's
 * union over every message kind cost more than the rest of reading the response; anything else goes
 * through the SDK's schema (which throws on what it rejects).
 */
export function upstreamMessage(data: string): JSONRPCMessage {
  const v: unknown = JSON.parse(data);
  if (isPlainObject(v) && v.jsonrpc === '2.0' && isPlainObject(v.result) && v.result._meta === undefined) {
    const id = v.id;
    const keys = Object.keys(v);
    if (keys.length === 3 && (typeof id === 'string' || Number.isInteger(id)) && 'id' in v)
      return v as JSONRPCMessage;
  }
  return JSONRPCMessageSchema.parse(v);
}

/**
 * The SDK's Streamable HTTP client transport with a fast path for what a proxied call is: a POSTed
 * request answered with JSON or an SSE stream. The SDK reads that through WHATWG streams (Response
 * body → TextDecoderStream → an SSE parser stream) and validates each message with zod's union of
 * every message kind; here node:http's response is read as it arrives and parsed in place. Anything
 * else (notifications, responses to the server, resumption, a non-2xx answer's retry logic with an
 * auth provider, GET streams, DELETE) is the SDK's, unchanged. A POST stream that ends without the
 * response after an event id resumes through the SDK (GET with Last-Event-ID), as the SDK would.
 */
export class UpstreamHttpTransport extends StreamableHTTPClientTransport {
  private readonly agent: http.Agent | https.Agent;

  constructor(url: URL, opts: { headers?: Record<string, string> | undefined; fetch: FetchLike }) {
    super(url, { requestInit: { headers: opts.headers ?? {} }, fetch: opts.fetch });
    this.agent = (url.protocol === 'https:' ? upstreamAgents.https : upstreamAgents.http)();
  }

  override async send(message: JSONRPCMessage | JSONRPCMessage[], options?: TransportSendOptions) {
    const self = this as unknown as TransportInternals;
    const isRequest =
      !Array.isArray(message) && 'method' in message && 'id' in message && message.id !== undefined;
    if (!isRequest || options?.resumptionToken || self._authProvider) return super.send(message, options);
    let handled: boolean;
    try {
      handled = await this.post(self, message, options?.onresumptiontoken);
    } catch (err) {
      this.onerror?.(err as Error);
      throw err;
    }
    // A redirect: the request was not handled there; the SDK follows it (same origin only).
    if (!handled) await super.send(message, options);
  }

  private async post(
    self: TransportInternals,
    message: JSONRPCMessage,
    onresumptiontoken: ((token: string) => void) | undefined,
  ): Promise<boolean> {
    const headers: Record<string, string> = {};
    (await self._commonHeaders()).forEach((v, k) => (headers[k] = v));
    const body = JSON.stringify(message);
    headers['content-type'] = 'application/json';
    headers.accept = 'application/json, text/event-stream';
    headers['content-length'] = String(Buffer.byteLength(body));
    const signal = self._abortController?.signal;
    if (signal && getMaxListeners(signal) < 1000) setMaxListeners(1000, signal);
    const url = self._url;
    const request = url.protocol === 'https:' ? https.request : http.request;
    // A keep-alive socket the upstream closed as idle just when it was reused fails before the
    // request was read (ECONNRESET/EPIPE on a reused socket, no response): sent again once, on a
    // new socket, as Node's documentation advises. Anything else is the caller's error.
    const attempt = () =>
      new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = request(url, { method: 'POST', headers, agent: this.agent, signal }, resolve);
        req.on('error', (err: NodeJS.ErrnoException) =>
          reject(Object.assign(err, { reused: req.reusedSocket })),
        );
        req.end(body);
      });
    const res = await attempt().catch((err: NodeJS.ErrnoException & { reused?: boolean }) => {
      if (err.reused && (err.code === 'ECONNRESET' || err.code === 'EPIPE') && !signal?.aborted)
        return attempt();
      throw err;
    });
    const sessionId = res.headers['mcp-session-id'];
    if (typeof sessionId === 'string' && sessionId) self._sessionId = sessionId;
    const status = res.statusCode ?? 502;
    const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (
      status < 200 ||
      status >= 300 ||
      status === 202 ||
      (type !== 'text/event-stream' && type !== 'application/json')
    ) {
      const text = await readText(res).catch(() => '');
      if (status === 202) return true;
      if (status >= 300 && status < 400) return false;
      if (status >= 200 && status < 300)
        throw new StreamableHTTPError(-1, `Unexpected content type: ${res.headers['content-type']}`);
      throw new StreamableHTTPError(status, `Error POSTing to endpoint: ${text}`);
    }
    if (type === 'application/json') {
      const data = await readText(res);
      const parsed: unknown = JSON.parse(data);
      for (const m of Array.isArray(parsed) ? parsed : [parsed])
        this.onmessage?.(upstreamMessage(JSON.stringify(m)));
      return true;
    }
    // text/event-stream: read in the background, as the SDK does (send resolves once the stream is open).
    void this.readSse(res, message, onresumptiontoken);
    return true;
  }

  private async readSse(
    res: http.IncomingMessage,
    message: JSONRPCMessage,
    onresumptiontoken: ((token: string) => void) | undefined,
  ): Promise<void> {
    const decoder = new StringDecoder('utf8');
    let buf = '';
    let data: string[] = [];
    let event = '';
    let lastEventId: string | undefined;
    let receivedResponse = false;
    const dispatch = () => {
      const text = data.join('\n');
      const name = event;
      data = [];
      event = '';
      if (!text || (name !== '' && name !== 'message')) return;
      try {
        const m = upstreamMessage(text);
        if ('result' in m || 'error' in m) receivedResponse = true;
        this.onmessage?.(m);
      } catch (err) {
        this.onerror?.(err as Error);
      }
    };
    const line = (l: string) => {
      if (l === '') return dispatch();
      if (l.startsWith(':')) return;
      const colon = l.indexOf(':');
      const field = colon < 0 ? l : l.slice(0, colon);
      let value = colon < 0 ? '' : l.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
      else if (field === 'id' && !value.includes('\0')) {
        lastEventId = value;
        onresumptiontoken?.(value);
      }
    };
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        buf += decoder.write(chunk);
        let nl: number;
        while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
          const end = buf[nl] === '\r' && buf[nl + 1] === '\n' ? nl + 2 : nl + 1;
          // A lone \r at the end of the buffer may be the first half of \r\n: wait for more.
          if (buf[nl] === '\r' && nl === buf.length - 1) break;
          line(buf.slice(0, nl));
          buf = buf.slice(end);
        }
      }
      buf += decoder.end();
      if (buf) line(buf);
      dispatch();
    } catch (err) {
      if (!(this as unknown as TransportInternals)._abortController?.signal.aborted)
        this.onerror?.(new Error(`SSE stream disconnected: ${(err as Error).message}`));
    }
    // The server closed the stream after an event id but before the response: resume it (GET with
    // Last-Event-ID) through the SDK, which replays and re-ids what follows.
    if (
      !receivedResponse &&
      lastEventId !== undefined &&
      !(this as unknown as TransportInternals)._abortController?.signal.aborted
    )
      await super.send(message, { resumptionToken: lastEventId, onresumptiontoken }).catch(() => undefined);
  }
}

async function readText(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

/** One keep-alive agent per scheme for the fast path, made on first use. */
const upstreamAgents = (() => {
  const agentOpts = { keepAlive: true, noDelay: true };
  let h: http.Agent | undefined;
  let hs: https.Agent | undefined;
  return { http: () => (h ??= new http.Agent(agentOpts)), https: () => (hs ??= new https.Agent(agentOpts)) };
})();

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
      return new UpstreamHttpTransport(new URL(upstream.url), { headers, fetch: fetchLike });
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
