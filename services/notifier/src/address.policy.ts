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

/** The 16 bytes of an IPv6 address (zone id stripped, an embedded dotted quad allowed). */
export function ipv6Bytes(ip: string): number[] | undefined {
  const addr = ip.replace(/%.*$/, '');
  if (isIP(addr) !== 6) return undefined;
  let text = addr;
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const words = [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (words.length !== 8 || words.some((w) => !(w >= 0 && w <= 0xffff))) return undefined;
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

const v4 = (b: readonly number[], at: number): string => b.slice(at, at + 4).join('.');

/**
 * The IPv4 address an IPv6 address stands for, where it embeds one: IPv4-mapped (::ffff:0:0/96),
 * IPv4-compatible (::/96, deprecated by RFC 4291 but still routed by some stacks) and 6to4
 * (2002::/16, RFC 3056: the 32 bits after the prefix). NOTE: `[::127.0.0.1]` is ::7f00:1 once a URL
 * is parsed, which is why this works on bytes rather than on the dotted text.
 */
function embeddedV4(
  b: readonly number[],
): { kind: 'mapped' | 'compatible' | '6to4'; v4: string } | undefined {
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return { kind: 'mapped', v4: v4(b, 12) };
  if (zeros(0, 12)) return { kind: 'compatible', v4: v4(b, 12) };
  if (b[0] === 0x20 && b[1] === 0x02) return { kind: '6to4', v4: v4(b, 2) };
  return undefined;
}

const PRIVATE = 'a private, loopback, link-local or metadata address';

/**
 * undefined when the address may be used, otherwise why not. NOTE: the reason never names the
 * address: it ends up in alert_deliveries and logs, and a destination's address is as secret as its URL.
 */
export function refuseAddress(ip: string, allowed: BlockList): string | undefined {
  const addr = ip.replace(/%.*$/, '');
  const family = isIP(addr);
  if (family === 0) return 'not an IP address';
  if (family === 4) {
    if (allowed.check(addr, 'ipv4')) return undefined;
    return DENIED.check(addr, 'ipv4') ? PRIVATE : undefined;
  }
  const bytes = ipv6Bytes(addr);
  if (!bytes) return 'not an IP address';
  const inner = embeddedV4(bytes);
  // Allowlisted as the IPv6 address itself, or as the IPv4 address it carries.
  if (allowed.check(addr, 'ipv6') || (inner && allowed.check(inner.v4, 'ipv4'))) return undefined;
  if (DENIED.check(addr, 'ipv6')) return PRIVATE;
  if (inner?.kind === 'compatible') return 'an IPv4-compatible IPv6 address (::/96)';
  if (inner && DENIED.check(inner.v4, 'ipv4')) return `${inner.kind} IPv6 wrapping ${PRIVATE}`;
  return undefined;
}

/** Static URL checks at boot: scheme, no credentials in the URL's userinfo. */
export function refuseUrl(url: URL, opts: { allowHttp: boolean }): string | undefined {
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && opts.allowHttp))
    return `scheme ${url.protocol} refused (https only unless allow_http)`;
  if (url.username || url.password) return 'credentials in the URL are refused';
  return undefined;
}
