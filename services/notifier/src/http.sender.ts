import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { lookup as dnsLookup } from 'node:dns';
import { isIP, type BlockList, type LookupFunction } from 'node:net';
import { refuseAddress } from './address.policy.js';

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  latencyMs: number;
}

/**
 * An error of ours whose message is safe to record: it never names the URL, host, address or path.
 * Errors from Node (DNS, sockets, TLS) are reduced to their code before they are recorded.
 */
export class SafeDeliveryError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** A destination refused by policy: not retryable. */
export class DestinationRefusedError extends SafeDeliveryError {
  constructor(why: string) {
    super('AUDIT_ERR_DESTINATION_REFUSED', `destination address refused: ${why}`, false);
  }
}

export interface PostOptions {
  timeoutMs: number;
  allowed: BlockList;
  headers?: Record<string, string>;
}

export type PostJson = (url: URL, body: string, opts: PostOptions) => Promise<HttpResult>;

/**
 * POST a JSON body. The address policy is applied in the socket's DNS lookup, i.e. to the address
 * actually connected to. NOTE: the errors it rejects with may name the host (Node's do); deliver()
 * records only their code (destinations.ts).
 */
export const postJson: PostJson = (url, body, opts) =>
  new Promise<HttpResult>((resolve, reject) => {
    const started = performance.now();
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) {
      const why = refuseAddress(host, opts.allowed);
      if (why) return reject(new DestinationRefusedError(why));
    }
    const lookup: LookupFunction = (hostname, options, cb) => {
      dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return cb(err, '', 4);
        const list = addresses as unknown as Array<{ address: string; family: number }>;
        for (const a of list) {
          const why = refuseAddress(a.address, opts.allowed);
          if (why) return cb(new DestinationRefusedError(`it resolves to ${why}`), '', 4);
        }
        const first = list[0];
        if (!first)
          return cb(new SafeDeliveryError('ENOTFOUND', 'DNS lookup returned no address', true), '', 4);
        if ((options as { all?: boolean }).all)
          return (cb as unknown as (e: null, a: typeof list) => void)(null, list);
        cb(null, first.address, first.family);
      });
    };
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      {
        method: 'POST',
        lookup,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'mcp-audit-notifier/1',
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          // Keep at most 16 KiB of a response: only a short error text is ever used.
          if (size < 16_384) chunks.push(c);
          size += c.length;
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8').slice(0, 16_384),
            latencyMs: Math.round(performance.now() - started),
          });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      },
    );
    const timer = setTimeout(
      () =>
        req.destroy(
          new SafeDeliveryError('AUDIT_ERR_DELIVERY_TIMEOUT', `timed out after ${opts.timeoutMs} ms`, true),
        ),
      opts.timeoutMs,
    );
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
