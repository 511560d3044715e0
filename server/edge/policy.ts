/**
 * Destination policy (PROTOCOL.md §3): the edge is not an open relay into its own network.
 * A name is resolved once; every address is checked; only addresses that passed are dialed.
 */
import { BlockList, isIP } from 'node:net';
import { lookup } from 'node:dns/promises';

const refusedV4: Array<[string, number]> = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast
];
const refusedV6: Array<[string, number]> = [
  ['::', 128], // unspecified
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
];

const v4 = new BlockList();
for (const [net, bits] of refusedV4) v4.addSubnet(net, bits, 'ipv4');
const v6 = new BlockList();
for (const [net, bits] of refusedV6) v6.addSubnet(net, bits, 'ipv6');

function words(ip: string): number[] | null {
  // Node normalises through BlockList, but we need the embedded IPv4 of a few IPv6 forms.
  let text = ip;
  let tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const b = dotted[1]!.split('.').map(Number);
    tail = [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
    text = text.slice(0, -dotted[1]!.length) + '0:0';
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':').map((x) => parseInt(x, 16)) : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':').map((x) => parseInt(x, 16)) : [];
  const fill = rest === undefined ? [] : new Array<number>(8 - h.length - r.length).fill(0);
  const all = [...h, ...fill, ...r];
  if (all.length !== 8 || all.some((w) => Number.isNaN(w))) return null;
  if (tail.length) all.splice(6, 2, ...tail);
  return all;
}

/** The IPv4 address an IPv6 address carries, for forms that reach IPv4 hosts. */
function embeddedV4(ip: string): string | null {
  const w = words(ip);
  if (!w) return null;
  const v4of = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zero = (from: number, to: number) => w.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && w[5] === 0xffff) return v4of(w[6]!, w[7]!); // ::ffff:a.b.c.d (mapped)
  if (zero(0, 6) && (w[6] !== 0 || w[7]! > 1)) return v4of(w[6]!, w[7]!); // ::a.b.c.d (compatible)
  if (w[0] === 0x64 && w[1] === 0xff9b && zero(2, 6)) return v4of(w[6]!, w[7]!); // NAT64
  if (w[0] === 0x2002) return v4of(w[1]!, w[2]!); // 6to4
  return null;
}

/** True when the edge must not dial `ip` (unless --allow-private). Non-IP text is refused. */
export function isRefusedAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return v4.check(ip, 'ipv4');
  if (family === 6) {
    if (v6.check(ip, 'ipv6')) return true;
    const inner = embeddedV4(ip);
    return inner !== null && v4.check(inner, 'ipv4');
  }
  return true;
}

export class PolicyError extends Error {
  constructor(
    message: string,
    readonly reason: 'policy' | 'resolve',
  ) {
    super(message);
  }
}

export interface ResolveOptions {
  allowPrivate: boolean;
  /** Test-only name overrides (`--test-resolve NAME=IP`), consulted before DNS. */
  overrides: ReadonlyMap<string, string>;
}

/**
 * Resolves `host` once and returns the addresses that may be dialed. Addresses that fail the
 * policy are dropped; if none is left the destination is refused (RESET 0x02).
 */
export async function resolveAllowed(host: string, o: ResolveOptions): Promise<string[]> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  let addresses: string[];
  const override = o.overrides.get(bare.toLowerCase());
  if (override) addresses = [override];
  else if (isIP(bare)) addresses = [bare];
  else {
    try {
      addresses = (await lookup(bare, { all: true, verbatim: true })).map((a) => a.address);
    } catch (e) {
      throw new PolicyError(`cannot resolve ${bare}: ${(e as NodeJS.ErrnoException).code ?? e}`, 'resolve');
    }
  }
  if (o.allowPrivate) return addresses;
  const allowed = addresses.filter((a) => !isRefusedAddress(a));
  if (allowed.length === 0) throw new PolicyError(`${bare} resolves only to refused addresses`, 'policy');
  return allowed;
}
