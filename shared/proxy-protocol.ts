/**
 * PROXY protocol version 2 (HAProxy's proxy-protocol.txt §2.2): the binary header a load
 * balancer puts before a connection's first byte to say whom it carries. Decoded on the edge's
 * listener from `--trusted-proxy` peers; encoded toward an upstream that wants it. TLVs are
 * skipped. Pure: bytes in, a header or a ProxyProtocolError out.
 */
import { ProxyProtocolError } from './errors.ts';
import { formatIPv6, parseIPv4, parseIPv6 } from './ip.ts';

/** The 12-byte signature every v2 header starts with. */
export const PROXY_V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
/** A header longer than this is refused: addresses and the TLVs a balancer sends fit easily. */
export const MAX_PROXY_V2_LENGTH = 4096;

export interface ProxyEndpoint {
  address: string;
  port: number;
}

export type ProxyHeader =
  /** LOCAL: the balancer's own connection (a health check): no client to name. */
  | { command: 'local' }
  /** PROXY over TCP/UDP on IPv4 or IPv6: the client (source) and the address it reached (destination). */
  | { command: 'proxy'; family: 'ipv4' | 'ipv6'; transport: 'stream' | 'dgram'; source: ProxyEndpoint; destination: ProxyEndpoint }
  /** PROXY with an address family Passage does not use (UNSPEC, UNIX): accepted, no client named. */
  | { command: 'proxy'; family: 'unspec' | 'unix' };

/**
 * Whether `buf` could still be, or is, the start of a v2 header: true while every byte so far
 * matches the signature. A connection whose first bytes fail this is plain.
 */
export function mayBeProxyV2(buf: Uint8Array): boolean {
  const n = Math.min(buf.length, PROXY_V2_SIGNATURE.length);
  for (let i = 0; i < n; i++) if (buf[i] !== PROXY_V2_SIGNATURE[i]) return false;
  return true;
}

/** The header and its length, or null while `buf` holds only a prefix of one. */
export function decodeProxyV2(buf: Uint8Array): { header: ProxyHeader; length: number } | null {
  if (!mayBeProxyV2(buf)) throw new ProxyProtocolError('MALFORMED', 'not a PROXY v2 signature');
  if (buf.length < 16) return null;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw new ProxyProtocolError('MALFORMED', `PROXY version ${verCmd >> 4}`);
  const command = verCmd & 0x0f;
  if (command > 1) throw new ProxyProtocolError('MALFORMED', `PROXY command ${command}`);
  const famProto = buf[13]!;
  const body = (buf[14]! << 8) | buf[15]!;
  const length = 16 + body;
  if (length > MAX_PROXY_V2_LENGTH) throw new ProxyProtocolError('MALFORMED', `PROXY header of ${length} bytes`);
  if (buf.length < length) return null;
  if (command === 0) return { header: { command: 'local' }, length };
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  if (transport > 2) throw new ProxyProtocolError('MALFORMED', `PROXY transport ${transport}`);
  if (family === 0) return { header: { command: 'proxy', family: 'unspec' }, length };
  if (family === 3) {
    if (body < 216) throw new ProxyProtocolError('MALFORMED', 'PROXY UNIX addresses truncated');
    return { header: { command: 'proxy', family: 'unix' }, length };
  }
  if (family > 3) throw new ProxyProtocolError('MALFORMED', `PROXY family ${family}`);
  if (transport === 0) throw new ProxyProtocolError('MALFORMED', 'PROXY INET without a transport');
  const size = family === 1 ? 4 : 16;
  if (body < 2 * size + 4) throw new ProxyProtocolError('MALFORMED', 'PROXY addresses truncated');
  const at = 16;
  const text = (from: number) => (size === 4 ? Array.from(buf.subarray(from, from + 4)).join('.') : formatIPv6(buf.subarray(from, from + 16)));
  const port = (from: number) => (buf[from]! << 8) | buf[from + 1]!;
  return {
    header: {
      command: 'proxy',
      family: family === 1 ? 'ipv4' : 'ipv6',
      transport: transport === 1 ? 'stream' : 'dgram',
      source: { address: text(at), port: port(at + 2 * size) },
      destination: { address: text(at + size), port: port(at + 2 * size + 2) },
    },
    length,
  };
}

/**
 * A PROXY v2 header for a TCP connection from `source` to `destination`, no TLVs: INET for two
 * IPv4 addresses, else INET6 (an IPv4 one beside an IPv6 one written IPv4-mapped, as a dual-stack
 * socket would report it).
 */
export function encodeProxyV2(source: ProxyEndpoint, destination: ProxyEndpoint): Uint8Array {
  const v4 = [parseIPv4(source.address), parseIPv4(destination.address)];
  const ipv4 = v4[0] !== null && v4[1] !== null;
  const asV6 = (address: string, n: number | null) => (n !== null ? parseIPv6(`::ffff:${address}`) : parseIPv6(address));
  const v6 = [asV6(source.address, v4[0]!), asV6(destination.address, v4[1]!)];
  if (!ipv4 && (v6[0] === null || v6[1] === null)) throw new ProxyProtocolError('UNSUPPORTED', 'PROXY v2 needs IPv4 or IPv6 addresses');
  const size = ipv4 ? 4 : 16;
  const out = new Uint8Array(16 + 2 * size + 4);
  out.set(PROXY_V2_SIGNATURE, 0);
  out[12] = 0x21; // version 2, PROXY
  out[13] = ipv4 ? 0x11 : 0x21; // INET or INET6, STREAM
  out[15] = 2 * size + 4;
  const put = (i: number, at: number) => {
    if (ipv4) {
      const n = v4[i]!;
      out.set([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff], at);
    } else v6[i]!.forEach((w, k) => out.set([w >> 8, w & 0xff], at + 2 * k));
  };
  put(0, 16);
  put(1, 16 + size);
  const ports = 16 + 2 * size;
  for (const [k, p] of [source.port, destination.port].entries()) {
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new ProxyProtocolError('UNSUPPORTED', `port out of range: ${p}`);
    out[ports + 2 * k] = p >> 8;
    out[ports + 2 * k + 1] = p & 0xff;
  }
  return out;
}
