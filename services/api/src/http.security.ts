/**
 * Response headers of every answer, and the Host/Origin checks. The console is a static build with
 * no inline script or style and no CDN, so the policy can be strict; the interactive API reference
 * (@fastify/swagger-ui, served from node_modules) runs under the same policy (it needs data: images).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export function securityHeaders(opts: { hsts: boolean }): Record<string, string> {
  return {
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
    ...(opts.hsts ? { 'strict-transport-security': 'max-age=31536000' } : {}),
  };
}

/** The hostname of a Host header value ("[::1]:9475" → "[::1]", "a.b:80" → "a.b"). */
export function hostnameOf(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const i = h.lastIndexOf(':');
  return i === -1 ? h : h.slice(0, i);
}

/** A Host header is allowed when its hostname (or its exact host:port) is in the list. */
export function hostAllowed(host: string | undefined, allowed: readonly string[]): boolean {
  if (!host) return false;
  const h = host.trim().toLowerCase();
  return allowed.some((a) => a.toLowerCase() === h || a.toLowerCase() === hostnameOf(h));
}

/**
 * An Origin is allowed when it is in the configured list, or (no list) when it is http(s) on an
 * allowed host and names the same host as the request's Host header (same origin).
 */
export function originAllowed(
  origin: string,
  host: string | undefined,
  allowedOrigins: readonly string[],
  allowedHosts: readonly string[],
): boolean {
  if (allowedOrigins.length > 0) return allowedOrigins.includes(origin);
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
  return hostAllowed(u.host, allowedHosts) && !!host && u.host.toLowerCase() === host.trim().toLowerCase();
}
