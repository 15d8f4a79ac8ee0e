import { BlockList, isIP } from 'node:net';

/**
 * Where the notifier may connect. Destination URLs come from operators, but a URL that resolves to
 * a private, loopback, link-local or cloud-metadata address would turn the notifier into an SSRF
 * probe, so those are refused unless the destination allowlists the network. The check runs on the
 * address actually connected to (see http.sender.ts), so DNS rebinding cannot slip past it.
 */
const DENIED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, including the 169.254.169.254 metadata endpoint
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  DENIED.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96], // NAT64 can reach private IPv4
  ['fc00::', 7], // unique local, including fd00:ec2::254 (EC2 metadata over IPv6)
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  DENIED.addSubnet(net, prefix, 'ipv6');

export function allowList(cidrs: readonly string[]): BlockList {
  const b = new BlockList();
  for (const c of cidrs) {
    const [net, len] = c.split('/');
    const family = isIP(net ?? '');
    if (!family || len === undefined) throw new Error(`invalid CIDR ${c}`);
    b.addSubnet(net!, Number(len), family === 4 ? 'ipv4' : 'ipv6');
  }
  return b;
}

/** undefined when the address may be used, otherwise why not. */
export function refuseAddress(ip: string, allowed: BlockList): string | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const addr = mapped ? mapped[1]! : ip;
  const family = isIP(addr);
  if (family === 0) return `not an IP address`;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (allowed.check(addr, type)) return undefined;
  if (DENIED.check(addr, type)) return `address ${addr} is private, loopback, link-local or metadata`;
  return undefined;
}

/** Static URL checks at boot: scheme, no credentials in the URL's userinfo. */
export function refuseUrl(url: URL, opts: { allowHttp: boolean }): string | undefined {
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && opts.allowHttp))
    return `scheme ${url.protocol} refused (https only unless allow_http)`;
  if (url.username || url.password) return 'credentials in the URL are refused';
  return undefined;
}
