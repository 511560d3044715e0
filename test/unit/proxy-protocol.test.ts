/** PROXY protocol v2 (HAProxy's proxy-protocol.txt §2.2): layout byte for byte, round trips, hostile input. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ProxyProtocolError, isProtocolError } from '../../shared/errors.ts';
import { formatIPv6, parseIPv6 } from '../../shared/ip.ts';
import { PROXY_V2_SIGNATURE, decodeProxyV2, encodeProxyV2, mayBeProxyV2 } from '../../shared/proxy-protocol.ts';

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, '').match(/../g)!.map((h) => parseInt(h, 16)));

describe('PROXY v2', () => {
  it('writes the specification’s layout: signature, 0x21, family/transport, length, addresses, ports', () => {
    const v4 = encodeProxyV2({ address: '192.0.2.1', port: 56324 }, { address: '198.51.100.2', port: 443 });
    expect(v4).toEqual(hex('0d0a0d0a000d0a515549540a 21 11 000c c0000201 c6336402 dc04 01bb'));
    const v6 = encodeProxyV2({ address: '2001:db8::1', port: 1 }, { address: '2001:db8::2', port: 2 });
    expect(v6).toEqual(hex('0d0a0d0a000d0a515549540a 21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 0001 0002'));
    // Mixed families: INET6, the IPv4 side IPv4-mapped. A name is no address.
    const mixed = encodeProxyV2({ address: '192.0.2.1', port: 1 }, { address: '2001:db8::2', port: 2 });
    expect(mixed).toEqual(hex('0d0a0d0a000d0a515549540a 21 21 0024 00000000000000000000ffffc0000201 20010db8000000000000000000000002 0001 0002'));
    expect(() => encodeProxyV2({ address: 'example.net', port: 1 }, { address: '::1', port: 2 })).toThrow(ProxyProtocolError);
  });

  it('reads back what it writes, for any IPv4 or IPv6 pair, with TLVs after the addresses skipped', () => {
    const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
    const v6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map(formatIPv6);
    const port = fc.integer({ min: 0, max: 65535 });
    fc.assert(
      fc.property(fc.oneof(fc.tuple(v4, v4), fc.tuple(v6, v6)), port, port, fc.uint8Array({ maxLength: 40 }), ([a, b], p, q, tlv) => {
        const plain = encodeProxyV2({ address: a, port: p }, { address: b, port: q });
        const withTlv = new Uint8Array([...plain, ...tlv]);
        const body = plain.length - 16 + tlv.length;
        withTlv[14] = body >> 8;
        withTlv[15] = body & 0xff;
        const decoded = decodeProxyV2(new Uint8Array([...withTlv, 0x47, 0x45, 0x54]))!; // "GET" follows
        expect(decoded.length).toBe(withTlv.length);
        expect(decoded.header).toMatchObject({ command: 'proxy', transport: 'stream', source: { address: a, port: p }, destination: { address: b, port: q } });
      }),
    );
  });

  it('every proper prefix is incomplete; LOCAL, UNSPEC and UNIX headers name no client', () => {
    const full = encodeProxyV2({ address: '203.0.113.9', port: 4000 }, { address: '198.51.100.1', port: 80 });
    for (let n = 0; n < full.length; n++) expect(decodeProxyV2(full.subarray(0, n)), `prefix ${n}`).toBeNull();
    expect(decodeProxyV2(new Uint8Array([...PROXY_V2_SIGNATURE, 0x20, 0x00, 0, 0]))).toEqual({ header: { command: 'local' }, length: 16 });
    expect(decodeProxyV2(new Uint8Array([...PROXY_V2_SIGNATURE, 0x21, 0x00, 0, 0]))!.header).toEqual({ command: 'proxy', family: 'unspec' });
    expect(decodeProxyV2(new Uint8Array([...PROXY_V2_SIGNATURE, 0x21, 0x31, 0, 216, ...new Uint8Array(216)]))!.header).toEqual({ command: 'proxy', family: 'unix' });
  });

  it('refuses what is malformed: version, command, family, transport, short addresses, oversize', () => {
    const sig = [...PROXY_V2_SIGNATURE];
    for (const bad of [
      [...sig, 0x11, 0x11, 0, 12, ...new Uint8Array(12)], // version 1
      [...sig, 0x22, 0x11, 0, 12, ...new Uint8Array(12)], // command 2
      [...sig, 0x21, 0x41, 0, 12, ...new Uint8Array(12)], // family 4
      [...sig, 0x21, 0x13, 0, 12, ...new Uint8Array(12)], // transport 3
      [...sig, 0x21, 0x10, 0, 12, ...new Uint8Array(12)], // INET without transport
      [...sig, 0x21, 0x11, 0, 8, ...new Uint8Array(8)], // IPv4 addresses need 12 bytes
      [...sig, 0x21, 0x21, 0, 12, ...new Uint8Array(12)], // IPv6 addresses need 36
      [...sig, 0x21, 0x11, 0xff, 0xff], // 65 KiB header
      [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0b, 0x21], // signature's last byte wrong
    ]) {
      expect(() => decodeProxyV2(Uint8Array.from(bad)), JSON.stringify(bad.slice(12, 16))).toThrow(ProxyProtocolError);
    }
    expect(mayBeProxyV2(new TextEncoder().encode('GET / HTTP/1.1'))).toBe(false);
    expect(mayBeProxyV2(PROXY_V2_SIGNATURE.subarray(0, 5))).toBe(true);
  });

  it('hostile bytes: incomplete, a header that fits the input, or a protocol error — nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (rest, signed) => {
        const buf = signed ? new Uint8Array([...PROXY_V2_SIGNATURE, ...rest]) : rest;
        try {
          const r = decodeProxyV2(buf);
          if (r) expect(r.length).toBeLessThanOrEqual(buf.length);
        } catch (e) {
          expect(isProtocolError(e)).toBe(true);
        }
      }),
    );
  });

  it('formats IPv6 as RFC 5952 compresses it (as the WHATWG URL parser normalises it)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        const text = formatIPv6(b);
        expect(parseIPv6(text)).toEqual(Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!));
        expect(`[${text}]`).toBe(new URL(`http://[${text}]/`).hostname);
      }),
    );
    expect(formatIPv6(hex('00000000000000000000ffffc0000201'))).toBe('::ffff:c000:201');
    expect(formatIPv6(new Uint8Array(16))).toBe('::');
  });
});
