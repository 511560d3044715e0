/**
 * EagerSocks destination header (PROTOCOL.md §3): SOCKS5 address form, then a port.
 *   atyp u8: 0x01 IPv4 (4 bytes) | 0x03 domain (len u8 1–255, name) | 0x04 IPv6 (16 bytes)
 *   port u16 big-endian, 1–65535
 * It leads the first frame of every stream so the far side can dial without a round trip.
 */
import { AddressError } from './errors.ts';
import { formatIPv6 } from './ip.ts';
import { parseIPv4, parseIPv6 } from './ip.ts';

export type Destination =
  | { type: 'ipv4'; host: string; port: number }
  | { type: 'ipv6'; host: string; port: number }
  | { type: 'domain'; host: string; port: number };

export const ATYP_IPV4 = 0x01;
export const ATYP_DOMAIN = 0x03;
export const ATYP_IPV6 = 0x04;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function malformed(message: string): AddressError {
  return new AddressError('ADDRESS_MALFORMED', message);
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw malformed(`port out of range: ${port}`);
}

function ipv4Bytes(host: string): Uint8Array | null {
  const n = parseIPv4(host);
  return n === null ? null : new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

function ipv6Bytes(host: string): Uint8Array | null {
  const words = parseIPv6(host);
  if (!words) return null;
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

/** A destination from user-facing text (a host name or an IP literal, IPv6 with or without brackets). */
export function destinationFromHost(host: string, port: number): Destination {
  checkPort(port);
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (ipv4Bytes(bare)) return { type: 'ipv4', host: bare, port };
  const v6 = ipv6Bytes(bare);
  if (v6) return { type: 'ipv6', host: formatIPv6(v6), port };
  return { type: 'domain', host: bare, port };
}

/** Encodes a destination header; throws ADDRESS_MALFORMED for anything the wire cannot carry. */
export function encodeDestination(dest: Destination): Uint8Array {
  checkPort(dest.port);
  let out: Uint8Array;
  let at: number;
  if (dest.type === 'ipv4') {
    const addr = ipv4Bytes(dest.host);
    if (!addr) throw malformed(`not an IPv4 address: ${dest.host}`);
    out = new Uint8Array(1 + 4 + 2);
    out[0] = ATYP_IPV4;
    out.set(addr, 1);
    at = 5;
  } else if (dest.type === 'ipv6') {
    const addr = ipv6Bytes(dest.host);
    if (!addr) throw malformed(`not an IPv6 address: ${dest.host}`);
    out = new Uint8Array(1 + 16 + 2);
    out[0] = ATYP_IPV6;
    out.set(addr, 1);
    at = 17;
  } else {
    const name = encoder.encode(dest.host);
    if (name.length < 1 || name.length > 255) throw malformed(`domain must be 1–255 bytes, got ${name.length}`);
    out = new Uint8Array(1 + 1 + name.length + 2);
    out[0] = ATYP_DOMAIN;
    out[1] = name.length;
    out.set(name, 2);
    at = 2 + name.length;
  }
  out[at] = dest.port >> 8;
  out[at + 1] = dest.port & 0xff;
  return out;
}

/**
 * Decodes a header at the start of `bytes`. Returns the destination and the header's length
 * (application bytes follow it), or `null` when `bytes` is a valid but incomplete prefix.
 * Throws ADDRESS_MALFORMED for anything that can never become valid.
 */
export function decodeDestination(bytes: Uint8Array): { destination: Destination; length: number } | null {
  if (bytes.length < 1) return null;
  const atyp = bytes[0]!;
  let addrEnd: number;
  if (atyp === ATYP_IPV4) addrEnd = 5;
  else if (atyp === ATYP_IPV6) addrEnd = 17;
  else if (atyp === ATYP_DOMAIN) {
    if (bytes.length < 2) return null;
    const len = bytes[1]!;
    if (len === 0) throw malformed('empty domain');
    addrEnd = 2 + len;
  } else throw malformed(`unknown address type 0x${atyp.toString(16)}`);
  const length = addrEnd + 2;
  if (bytes.length < length) return null;
  const port = (bytes[addrEnd]! << 8) | bytes[addrEnd + 1]!;
  if (port === 0) throw malformed('port 0');
  let destination: Destination;
  if (atyp === ATYP_IPV4) {
    destination = { type: 'ipv4', host: Array.from(bytes.subarray(1, 5)).join('.'), port };
  } else if (atyp === ATYP_IPV6) {
    destination = { type: 'ipv6', host: formatIPv6(bytes.subarray(1, 17)), port };
  } else {
    let host: string;
    try {
      host = decoder.decode(bytes.subarray(2, addrEnd));
    } catch {
      throw malformed('domain is not UTF-8');
    }
    // A name carrying NUL, whitespace or path characters can only be an attack on the resolver.
    if (/[\u0000-\u0020\u007f/\\@]/.test(host)) throw malformed('domain has forbidden characters');
    destination = { type: 'domain', host, port };
  }
  return { destination, length };
}
