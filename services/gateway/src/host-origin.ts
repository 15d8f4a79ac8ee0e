import { isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import type { GatewayFile } from './config.js';

/**
 * DNS rebinding protection of the MCP endpoint. A web page on evil.example whose name is made to
 * resolve to the gateway's address reaches it with `Host: evil.example` and `Origin:
 * http://evil.example`; the MCP transport spec requires servers to validate Origin (403 when it is
 * present and invalid). The upstream's own check never sees these headers through the proxy, so
 * the gateway decides, as the SDK's transport does with `enableDnsRebindingProtection`: 403 and
 * JSON-RPC -32000 `Invalid Host header` / `Invalid Origin header`.
 */
export interface HostOriginOptions {
  /** The address the gateway listens on (127.0.0.1 by default). */
  bindHost: string;
  /** The gateway's public URL: its host name is allowed by default. */
  publicUrl: string;
  allowedHosts?: GatewayFile['allowed_hosts'];
  allowedOrigins?: GatewayFile['allowed_origins'];
}

export type HostOriginVerdict =
  | { ok: true }
  | { ok: false; code: 'host_not_allowed' | 'origin_not_allowed'; header: string; message: string };

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/** `127.0.0.0/8`, `::1`, `localhost` (and the IPv4-mapped forms). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** `Host` split into its lower-cased name (IPv6 in brackets) and port; undefined if malformed. */
function parseHost(host: string): { name: string; port: string } | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::([0-9]{1,5}))?$/i.exec(host.trim());
  return m ? { name: m[1]!.toLowerCase(), port: m[2] ?? '' } : undefined;
}

const bracketed = (addr: string) => (isIP(addr) === 6 ? `[${addr.toLowerCase()}]` : addr.toLowerCase());

export function createHostOriginCheck(opts: HostOriginOptions) {
  const explicitHosts = opts.allowedHosts;
  const explicitOrigins = opts.allowedOrigins === undefined ? undefined : new Set(opts.allowedOrigins);
  const defaultNames = new Set(LOOPBACK_NAMES);
  const bind = opts.bindHost.trim();
  // 0.0.0.0 / :: name no host a client could send.
  if (bind !== '' && bind !== '0.0.0.0' && bind !== '::') defaultNames.add(bracketed(bind));
  try {
    defaultNames.add(new URL(opts.publicUrl).hostname.toLowerCase());
  } catch {
    // publicUrl is validated where it is configured.
  }
  const boundToLoopback = isLoopbackHost(bind);

  function hostAllowed(host: string, localAddress: string | undefined): boolean {
    const h = parseHost(host);
    if (!h) return false;
    if (explicitHosts !== undefined)
      return explicitHosts.some((e) => e === h.name || (h.port !== '' && e === `${h.name}:${h.port}`));
    if (defaultNames.has(h.name)) return true;
    // The address the connection arrived on, as a literal: DNS cannot rebind an IP literal.
    if (localAddress !== undefined) {
      const local = localAddress.startsWith('::ffff:') ? localAddress.slice(7) : localAddress;
      if (isIP(local) !== 0 && bracketed(local) === h.name) return true;
    }
    return false;
  }

  function originAllowed(origin: string): boolean {
    let u: URL;
    try {
      u = new URL(origin);
    } catch {
      return false;
    }
    if (u.origin === 'null' || (u.protocol !== 'http:' && u.protocol !== 'https:')) return false;
    if (explicitOrigins !== undefined) return explicitOrigins.has(u.origin);
    return boundToLoopback && isLoopbackHost(u.hostname);
  }

  return function check(req: FastifyRequest): HostOriginVerdict {
    const host = req.headers.host ?? '';
    if (!hostAllowed(host, req.socket?.localAddress))
      return { ok: false, code: 'host_not_allowed', header: host, message: `Invalid Host header: ${host}` };
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin))
      return {
        ok: false,
        code: 'origin_not_allowed',
        header: origin,
        message: `Invalid Origin header: ${origin}`,
      };
    return { ok: true };
  };
}
