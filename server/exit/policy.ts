/**
 * Destination policy (PROTOCOL.md §3): the edge is not an open relay into its own network.
 * A name is resolved once; every address is checked; only addresses that passed are dialed, and a
 * destination is refused (RESET 0x02) only when none passed — a name with one public and one
 * private address is dialed on the public one, never the private one.
 *
 * Ranges are matched on parsed addresses (server/ip.ts) rather than with node:net's BlockList:
 * the IPv4 that an IPv6 address carries (mapped, NAT64, 6to4, …) has to be extracted anyway,
 * and BlockList's own handling of mapped addresses is undocumented.
 */
import { lookup } from 'node:dns/promises';
import { networkInterfaces } from 'node:os';
import { parseIPv4, parseIPv6 } from '../../shared/ip.ts';
import { DialError } from './dial-error.ts';

type Range = readonly [base: string, bits: number, why: string];

/** Refused IPv4 ranges, with the reason a log line gives. */
const REFUSED_V4: readonly Range[] = [
  ['0.0.0.0', 8, 'unspecified'], // "this network"; 0.0.0.0 reaches the host itself on Linux
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'cgnat'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'], // cloud metadata services live here
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'], // IETF protocol assignments
  ['192.0.2.0', 24, 'documentation'], // TEST-NET-1: never a real destination
  ['192.88.99.0', 24, 'reserved'], // the deprecated 6to4 relay anycast
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'], // benchmarking; some networks route it internally
  ['198.51.100.0', 24, 'documentation'], // TEST-NET-2
  ['203.0.113.0', 24, 'documentation'], // TEST-NET-3
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'], // future use, and 255.255.255.255 broadcast
];

/** Refused IPv6 ranges (IPv4 carried inside IPv6 is checked separately, see embeddedV4). */
const REFUSED_V6: readonly Range[] = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['64:ff9b:1::', 48, 'nat64-local'], // RFC 8215 local-use NAT64: the operator's own translator
  ['100::', 64, 'discard'], // RFC 6666 discard-only: a blackhole some networks route internally
  ['2001:db8::', 32, 'documentation'],
  ['fc00::', 7, 'private'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'], // deprecated, still routed on old networks
  ['ff00::', 8, 'multicast'],
];

const v4InRange = (ip: number, [base, bits]: Range): boolean => {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((ip & mask) >>> 0) === ((parseIPv4(base)! & mask) >>> 0);
};

const toBig = (words: readonly number[]): bigint => words.reduce((acc, w) => (acc << 16n) | BigInt(w), 0n);

const v6InRange = (words: readonly number[], [base, bits]: Range): boolean => {
  const shift = BigInt(128 - bits);
  return toBig(words) >> shift === toBig(parseIPv6(base)!) >> shift;
};

/**
 * The IPv4 address an IPv6 address carries, for the forms that reach IPv4 hosts — so that
 * `::ffff:127.0.0.1` or `64:ff9b::a00:1` cannot smuggle a refused IPv4 past the policy.
 */
export function embeddedV4(w: readonly number[]): number | null {
  const zero = (from: number, to: number) => w.slice(from, to).every((x) => x === 0);
  const join = (hi: number, lo: number) => ((hi << 16) >>> 0) + lo;
  if (zero(0, 5) && w[5] === 0xffff) return join(w[6]!, w[7]!); // ::ffff:a.b.c.d, IPv4-mapped
  if (zero(0, 4) && w[4] === 0xffff && w[5] === 0) return join(w[6]!, w[7]!); // ::ffff:0:a.b.c.d, SIIT
  if (zero(0, 6)) return join(w[6]!, w[7]!); // ::a.b.c.d, IPv4-compatible (:: and ::1 are refused anyway)
  if (w[0] === 0x64 && w[1] === 0xff9b && zero(2, 6)) return join(w[6]!, w[7]!); // 64:ff9b::/96, NAT64
  if (w[0] === 0x2002) return join(w[1]!, w[2]!); // 2002::/16, 6to4
  if (w[0] === 0x2001 && w[1] === 0) return join(w[6]! ^ 0xffff, w[7]! ^ 0xffff); // Teredo: the client's address, inverted
  return null;
}

/**
 * The edge host's own addresses (every interface's): a public address of the host reaches every
 * service it runs on 0.0.0.0, so it is refused like loopback. Kept as numbers, so any spelling matches.
 */
export interface OwnAddresses {
  v4: ReadonlySet<number>;
  v6: ReadonlySet<bigint>;
}

export const NO_OWN_ADDRESSES: OwnAddresses = { v4: new Set(), v6: new Set() };

export function ownAddresses(addresses: Iterable<string>): OwnAddresses {
  const v4 = new Set<number>();
  const v6 = new Set<bigint>();
  for (const a of addresses) {
    const bare = a.split('%')[0]!; // link-local zone ids
    const four = parseIPv4(bare);
    if (four !== null) v4.add(four);
    const six = parseIPv6(bare);
    if (six !== null) v6.add(toBig(six));
  }
  return { v4, v6 };
}

/** This host's interface addresses, as `os.networkInterfaces()` lists them now. */
export function hostAddresses(): OwnAddresses {
  return ownAddresses(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));
}

function v4Reason(ip: number, own: OwnAddresses): string | null {
  if (own.v4.has(ip)) return 'this-host';
  return REFUSED_V4.find((r) => v4InRange(ip, r))?.[2] ?? null;
}

/**
 * Why the edge must not dial `ip` ('loopback', 'private', 'this-host', …), or null when it may.
 * Text that is not an IP address is refused as 'not-an-address'; this never throws.
 */
export function refusalReason(ip: string, own: OwnAddresses = NO_OWN_ADDRESSES): string | null {
  const v4 = parseIPv4(ip);
  if (v4 !== null) return v4Reason(v4, own);
  const v6 = parseIPv6(ip);
  if (v6 === null) return 'not-an-address';
  if (own.v6.has(toBig(v6))) return 'this-host';
  const range = REFUSED_V6.find((r) => v6InRange(v6, r))?.[2];
  if (range) return range;
  const inner = embeddedV4(v6);
  const innerReason = inner === null ? null : v4Reason(inner, own);
  return innerReason === null ? null : `${innerReason} (embedded IPv4)`;
}

/** True when the edge must not dial `ip` (unless --allow-private). Non-IP text is refused. */
export function isRefusedAddress(ip: string, own: OwnAddresses = NO_OWN_ADDRESSES): boolean {
  return refusalReason(ip, own) !== null;
}

export interface ResolveOptions {
  /** Lift the policy (tests and labs): every resolved address is allowed. */
  allowPrivate: boolean;
  /** Name overrides (`--resolve NAME=IP`), consulted before DNS; keys lower-case. The policy still judges the IP. */
  overrides: ReadonlyMap<string, string>;
  /** The resolver; DNS by default. Injected by tests. */
  lookupAll?: (name: string) => Promise<string[]>;
  /** The edge host's own addresses, refused too (default: none; the edge passes hostAddresses()). */
  own?: OwnAddresses;
}

const dnsLookupAll = async (name: string): Promise<string[]> =>
  (await lookup(name, { all: true, verbatim: true })).map((a) => a.address);

/** Lower-case, brackets and one trailing dot removed: `[::1]` → `::1`, `Blocked.Test.` → `blocked.test`. */
function normaliseHost(host: string): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return (bare.endsWith('.') && bare.length > 1 ? bare.slice(0, -1) : bare).toLowerCase();
}

/**
 * Resolves `host` once and returns the addresses that may be dialed, in resolver order.
 * Refused addresses are dropped; if none is left the destination is refused (DialError 'policy').
 */
export async function resolveAllowed(host: string, o: ResolveOptions): Promise<string[]> {
  const name = normaliseHost(host);
  let addresses: string[];
  const override = o.overrides.get(name);
  if (override !== undefined) addresses = [override];
  else if (parseIPv4(name) !== null || parseIPv6(name) !== null) addresses = [name];
  else {
    try {
      addresses = await (o.lookupAll ?? dnsLookupAll)(name);
    } catch (e) {
      throw new DialError(`cannot resolve ${name}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 'resolve');
    }
    if (addresses.length === 0) throw new DialError(`cannot resolve ${name}: no addresses`, 'resolve');
  }
  if (o.allowPrivate) return addresses;
  const own = o.own ?? NO_OWN_ADDRESSES;
  const allowed = addresses.filter((a) => !isRefusedAddress(a, own));
  if (allowed.length === 0) {
    const why = [...new Set(addresses.map((a) => refusalReason(a, own)))].join(', ');
    throw new DialError(`${name} resolves only to refused addresses (${why})`, 'policy');
  }
  return allowed;
}
