import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { STATIC_TABLE, decodeFieldSection, encodeFieldSection, readPrefixInt, writePrefixInt, type Field } from '../../shared/h3/qpack.ts';
import { H3CodecError } from '../../shared/errors.ts';

const hex = (s: string) => Uint8Array.from(s.replace(/\s/g, '').match(/../g)!.map((b) => parseInt(b, 16)));

describe('QPACK with a zero-capacity dynamic table', () => {
  it('has the 99 static entries of RFC 9204 Appendix A', () => {
    expect(STATIC_TABLE.length).toBe(99);
    expect(STATIC_TABLE[0]).toEqual([':authority', '']);
    expect(STATIC_TABLE[15]).toEqual([':method', 'CONNECT']);
    expect(STATIC_TABLE[25]).toEqual([':status', '200']);
    expect(STATIC_TABLE[98]).toEqual(['x-frame-options', 'sameorigin']);
  });

  it('prefix integers match RFC 7541 C.1', () => {
    const enc = (first: number, bits: number, v: number) => {
      const out: number[] = [];
      writePrefixInt(out, first, bits, v);
      return out;
    };
    expect(enc(0, 5, 10)).toEqual([10]);
    expect(enc(0, 5, 1337)).toEqual([31, 154, 10]);
    expect(enc(0, 8, 42)).toEqual([42]);
    expect(readPrefixInt(Uint8Array.from([0xe0 | 31, 154, 10]), 0, 5)).toEqual({ value: 1337, next: 3 });
  });

  it('decodes the RFC 9204 B.1 example', () => {
    expect(decodeFieldSection(hex('0000 510b 2f69 6e64 6578 2e68 746d 6c'))).toEqual([[':path', '/index.html']]);
  });

  it('round-trips a WebTransport CONNECT and its answer (static, name-ref and literal, Huffman)', () => {
    const connect: Field[] = [
      [':method', 'CONNECT'],
      [':protocol', 'webtransport'],
      [':scheme', 'https'],
      [':authority', 'edge.example.net:4433'],
      [':path', '/wt?token=abc123'],
      ['origin', 'chrome-extension://fpfdgbheemljbjdgokbgabjlobeelakb'],
      ['sec-webtransport-http3-draft02', '1'],
    ];
    const wire = encodeFieldSection(connect);
    expect(wire[2]).toBe(0xc0 | 15); // :method CONNECT, indexed
    expect(decodeFieldSection(wire)).toEqual(connect);
    const answer: Field[] = [[':status', '200'], ['sec-webtransport-http3-draft', 'draft02']];
    expect(decodeFieldSection(encodeFieldSection(answer))).toEqual(answer);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.stringMatching(/^[a-z:-]{1,20}$/), fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, ''))), { maxLength: 8 }), (fields) => {
        expect(decodeFieldSection(encodeFieldSection(fields))).toEqual(fields);
      }),
    );
  });

  it('refuses dynamic references, bad indexes and oversized sections; garbage only raises H3CodecError', () => {
    expect(() => decodeFieldSection(hex('0381 10 11'))).toThrow(/dynamic/); // RFC 9204 B.2's section
    expect(() => decodeFieldSection(hex('0000 80'))).toThrow(/dynamic/);
    expect(() => decodeFieldSection(hex('0000 ff 24'))).toThrow(/out of range/); // static index 99
    expect(() => decodeFieldSection(encodeFieldSection([['x', 'y'.repeat(100)]]), 64)).toThrow(/limit/);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (junk) => {
        try {
          decodeFieldSection(junk, 4096);
        } catch (e) {
          expect(e).toBeInstanceOf(H3CodecError);
        }
      }),
    );
  });
});
