import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeDestination,
  destinationFromHost,
  encodeDestination,
  type Destination,
} from '../../shared/eagersocks.ts';
import { AddressError } from '../../shared/errors.ts';

const ipv4 = fc.ipV4().map((host) => ({ type: 'ipv4' as const, host }));
const ipv6 = fc.ipV6().map((h) => destinationFromHost(h, 1)).filter((d) => d.type === 'ipv6');
const domain = fc
  .stringMatching(/^[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63}){0,3}$/)
  .filter((h) => h.length <= 255)
  .map((host) => ({ type: 'domain' as const, host }));
const port = fc.integer({ min: 1, max: 65535 });
const destination: fc.Arbitrary<Destination> = fc
  .tuple(fc.oneof(ipv4, ipv6, domain), port)
  .map(([d, p]) => ({ ...d, port: p }) as Destination);

describe('EagerSocks header', () => {
  it('round-trips every address form', () => {
    fc.assert(
      fc.property(destination, fc.uint8Array({ maxLength: 64 }), (dest, tail) => {
        const header = encodeDestination(dest);
        const bytes = new Uint8Array(header.length + tail.length);
        bytes.set(header);
        bytes.set(tail, header.length);
        const out = decodeDestination(bytes);
        expect(out).not.toBeNull();
        expect(out!.length).toBe(header.length);
        expect(out!.destination).toEqual(dest);
      }),
    );
  });

  it('matches the SOCKS5 address bytes', () => {
    expect(Array.from(encodeDestination({ type: 'ipv4', host: '1.2.3.4', port: 443 }))).toEqual([1, 1, 2, 3, 4, 1, 187]);
    expect(Array.from(encodeDestination({ type: 'domain', host: 'ab', port: 80 }))).toEqual([3, 2, 97, 98, 0, 80]);
    const v6 = encodeDestination({ type: 'ipv6', host: '::1', port: 1 });
    expect(v6.length).toBe(19);
    expect(v6[0]).toBe(4);
    expect(v6[16]).toBe(1);
  });

  it('says "incomplete" for every strict prefix of a valid header', () => {
    fc.assert(
      fc.property(destination, (dest) => {
        const header = encodeDestination(dest);
        for (let i = 0; i < header.length; i++) expect(decodeDestination(header.subarray(0, i))).toBeNull();
      }),
    );
  });

  it('rejects what the wire cannot carry', () => {
    const bad = (f: () => unknown) => expect(f).toThrow(AddressError);
    bad(() => encodeDestination({ type: 'domain', host: '', port: 1 }));
    bad(() => encodeDestination({ type: 'domain', host: 'a'.repeat(256), port: 1 }));
    bad(() => encodeDestination({ type: 'ipv4', host: '1.2.3.4', port: 0 }));
    bad(() => encodeDestination({ type: 'ipv4', host: '1.2.3.4', port: 65536 }));
    bad(() => encodeDestination({ type: 'ipv4', host: '256.1.1.1', port: 1 }));
    bad(() => encodeDestination({ type: 'ipv6', host: '1::2::3', port: 1 }));
    bad(() => decodeDestination(new Uint8Array([0x02, 0, 0])));
    bad(() => decodeDestination(new Uint8Array([0x03, 0, 0, 80])));
    bad(() => decodeDestination(new Uint8Array([0x01, 1, 2, 3, 4, 0, 0])));
    bad(() => decodeDestination(new Uint8Array([0x03, 3, 0x61, 0x00, 0x62, 0, 80])));
    bad(() => decodeDestination(new Uint8Array([0x03, 2, 0xff, 0xfe, 0, 80])));
  });

  it('answers hostile bytes with AddressError or "incomplete", nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          const out = decodeDestination(bytes);
          if (out) expect(out.length).toBeLessThanOrEqual(bytes.length);
        } catch (e) {
          expect(e).toBeInstanceOf(AddressError);
        }
      }),
    );
  });

  it('parses host text as a user would write it', () => {
    expect(destinationFromHost('[2001:db8::1]', 443)).toEqual({ type: 'ipv6', host: '2001:db8::1', port: 443 });
    expect(destinationFromHost('::ffff:127.0.0.1', 1)).toEqual({ type: 'ipv6', host: '::ffff:7f00:1', port: 1 });
    expect(destinationFromHost('10.1.2.3', 80).type).toBe('ipv4');
    expect(destinationFromHost('example.org', 80).type).toBe('domain');
  });
});
