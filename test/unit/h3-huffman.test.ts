import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EOS, huffmanCode, huffmanDecode, huffmanEncode } from '../../shared/h3/huffman.ts';
import { H3CodecError } from '../../shared/errors.ts';

const hex = (s: string) => Uint8Array.from(s.replace(/\s/g, '').match(/../g)!.map((b) => parseInt(b, 16)));
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);

describe('Huffman code (RFC 7541 Appendix B)', () => {
  it('derives the appendix codes from the lengths', () => {
    // Rows from the appendix's hex column, spread over every length and both ends of the table.
    const rows: Array<[number, number, number]> = [
      [0, 0x1ff8, 13], [1, 0x7fffd8, 23], [10, 0x3ffffffc, 30], [22, 0x3ffffffe, 30], [32, 0x14, 6],
      [33, 0x3f8, 10], [36, 0x1ff9, 13], [48, 0x0, 5], [58, 0x5c, 7], [60, 0x7ffc, 15], [88, 0xfc, 8],
      [92, 0x7fff0, 19], [94, 0x3ffc, 14], [116, 0x9, 5], [124, 0x7fc, 11], [127, 0xffffffc, 28],
      [128, 0xfffe6, 20], [153, 0x1fffdc, 21], [199, 0x1ffffec, 25], [203, 0x7ffffde, 27],
      [220, 0xffffffd, 28], [254, 0x7fffff0, 27], [255, 0x3ffffee, 26], [EOS, 0x3fffffff, 30],
    ];
    for (const [sym, code, length] of rows) expect(huffmanCode(sym), `symbol ${sym}`).toEqual({ code, length });
    // A complete prefix code: the Kraft sum is exactly 1.
    let kraft = 0;
    for (let s = 0; s <= EOS; s++) kraft += 2 ** -huffmanCode(s).length;
    expect(kraft).toBe(1);
  });

  it('matches the RFC 7541 C.4 examples both ways', () => {
    const cases: Array<[string, string]> = [
      ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
      ['no-cache', 'a8eb 1064 9cbf'],
      ['custom-key', '25a8 49e9 5ba9 7d7f'],
      ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
    ];
    for (const [plain, coded] of cases) {
      expect(Array.from(huffmanEncode(bytes(plain)))).toEqual(Array.from(hex(coded)));
      expect(text(huffmanDecode(hex(coded)))).toBe(plain);
    }
  });

  it('round-trips any bytes, and refuses bad padding or an EOS inside', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        expect(Array.from(huffmanDecode(huffmanEncode(b)))).toEqual(Array.from(b));
      }),
    );
    expect(() => huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4fe'))).toThrow(H3CodecError); // padding not all ones
    expect(() => huffmanDecode(hex('ffff ffff'))).toThrow(H3CodecError); // EOS
    expect(() => huffmanDecode(hex('ff'))).toThrow(H3CodecError); // 8 bits of padding
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (junk) => {
        try {
          huffmanDecode(junk);
        } catch (e) {
          expect(e).toBeInstanceOf(H3CodecError);
        }
      }),
    );
  });
});
