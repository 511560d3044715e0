import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodeVarint, readVarint, readVarintBig, LARGE_VARINT, MAX_VARINT, MAX_VARINT_BIG } from '../../shared/h3/varint.ts';
import { H3FrameDecoder, Setting, decodeSettings, encodeFrame, encodeSettings, FrameType } from '../../shared/h3/frame.ts';
import { H3CodecError, UsageError } from '../../shared/errors.ts';

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));

describe('QUIC varints (RFC 9000 §16 and appendix A.1)', () => {
  it('decodes the RFC examples, including a non-minimal one', () => {
    expect(readVarint(hex('9d7f3e7d'), 0)).toEqual({ value: 494878333, length: 4 });
    expect(readVarint(hex('7bbd'), 0)).toEqual({ value: 15293, length: 2 });
    expect(readVarint(hex('25'), 0)).toEqual({ value: 37, length: 1 });
    expect(readVarint(hex('4025'), 0)).toEqual({ value: 37, length: 2 });
    // 151288809941952652 is above 2^53−1: exact as a bigint, LARGE_VARINT as a number (never a rounded value).
    expect(readVarintBig(hex('c2197c5eff14e88c'), 0)).toEqual({ value: 151288809941952652n, length: 8 });
    expect(readVarint(hex('c2197c5eff14e88c'), 0)).toEqual({ value: LARGE_VARINT, length: 8 });
  });

  it('reads the whole 62-bit range exactly, at the boundaries and at random', () => {
    const eight = (v: bigint) => Uint8Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(8 * (7 - i))) & 0xffn) | (i === 0 ? 0xc0 : 0));
    for (const v of [2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, MAX_VARINT_BIG]) {
      expect(readVarintBig(eight(v), 0)).toEqual({ value: v, length: 8 });
      expect(readVarint(eight(v), 0)!.value).toBe(v <= 2n ** 53n - 1n ? Number(v) : LARGE_VARINT);
    }
    expect(readVarintBig(hex('ffffffffffffffff'), 0)!.value).toBe(MAX_VARINT_BIG);
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_VARINT_BIG }), (v) => {
        expect(readVarintBig(eight(v), 0)).toEqual({ value: v, length: 8 });
        if (v <= BigInt(MAX_VARINT)) expect(readVarint(eight(v), 0)!.value).toBe(Number(v));
      }),
    );
  });

  it('encodes minimally and round-trips every safe value', () => {
    expect(Array.from(encodeVarint(37))).toEqual([0x25]);
    expect(Array.from(encodeVarint(15293))).toEqual([0x7b, 0xbd]);
    expect(Array.from(encodeVarint(494878333))).toEqual([0x9d, 0x7f, 0x3e, 0x7d]);
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 2 ** 30 }), fc.integer({ min: 0, max: MAX_VARINT })), (v) => {
        const bytes = encodeVarint(v);
        expect(readVarint(bytes, 0)).toEqual({ value: v, length: bytes.length });
        for (let i = 0; i < bytes.length; i++) expect(readVarint(bytes.subarray(0, i), 0)).toBeNull();
      }),
    );
    expect(() => encodeVarint(-1)).toThrow(UsageError);
    expect(() => encodeVarint(1.5)).toThrow(UsageError);
  });
});

describe('HTTP/3 frames', () => {
  it('frames survive any chunking, and SETTINGS round-trip', () => {
    const settings = [
      [Setting.QPACK_MAX_TABLE_CAPACITY, 0],
      [Setting.ENABLE_CONNECT_PROTOCOL, 1],
      [Setting.H3_DATAGRAM, 1],
      [Setting.H3_DATAGRAM_DRAFT04, 1],
      [Setting.ENABLE_WEBTRANSPORT, 1],
      [Setting.WEBTRANSPORT_MAX_SESSIONS, 16],
    ] as const;
    expect([...decodeSettings(encodeSettings(settings))]).toEqual(settings.map(([a, b]) => [a, b]));
    fc.assert(
      fc.property(fc.array(fc.record({ type: fc.nat(0x3fff), payload: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (frames, cuts) => {
        const wire = frames.map((f) => encodeFrame(f.type, f.payload));
        const all = new Uint8Array(wire.reduce((n, w) => n + w.length, 0));
        let at = 0;
        for (const w of wire) {
          all.set(w, at);
          at += w.length;
        }
        const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
        const decoder = new H3FrameDecoder(1024);
        const got: Array<{ type: number; payload: number[] }> = [];
        let prev = 0;
        for (const p of [...points, all.length]) {
          for (const f of decoder.push(all.slice(prev, p))) got.push({ type: f.type, payload: Array.from(f.payload) });
          prev = p;
        }
        expect(got).toEqual(frames.map((f) => ({ type: f.type, payload: Array.from(f.payload) })));
        expect(decoder.pending).toBe(0);
      }),
    );
  });

  it('refuses oversized frames, repeated or truncated settings, and never throws anything else on garbage', () => {
    expect(() => new H3FrameDecoder(10).push(encodeFrame(FrameType.DATA, new Uint8Array(11)))).toThrow(H3CodecError);
    expect(() => decodeSettings(encodeSettings([[1, 1], [1, 2]]))).toThrow(/repeated/);
    expect(() => decodeSettings(hex('0140'))).toThrow(/truncated/);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
        try {
          new H3FrameDecoder(100).push(junk);
          decodeSettings(junk);
        } catch (e) {
          expect(e).toBeInstanceOf(H3CodecError);
        }
      }),
    );
  });
});
