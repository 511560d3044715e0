/**
 * The HPACK/QPACK Huffman code (RFC 7541 Appendix B), which Chromium uses for the literals of its
 * WebTransport CONNECT. The code is canonical — codes are assigned in order of (length, symbol) —
 * so the appendix is carried here as its 257 code lengths, and the codes are derived from them.
 * The tests check the derived codes against the appendix's hex column and the RFC's examples.
 */
import { H3CodecError } from '../errors.ts';

/** Code length in bits for each symbol 0–255, then EOS (256), as RFC 7541 Appendix B lists them. */
// prettier-ignore
const LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0–15
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16–31
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // ' ' – '/'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // '0' – '?'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // '@' – 'O'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 'P' – '_'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // '`' – 'o'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 'p' – 127
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128–143
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144–159
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160–175
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176–191
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192–207
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208–223
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224–239
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240–255
  30, // EOS
];

export const EOS = 256;
const MAX_LENGTH = 30;

/** Canonical codes, plus what the decoder needs per length: first code, first index, count. */
const CODES: number[] = new Array<number>(257).fill(0);
const SORTED: number[] = [];
const FIRST_CODE: number[] = new Array<number>(MAX_LENGTH + 2).fill(0);
const FIRST_INDEX: number[] = new Array<number>(MAX_LENGTH + 2).fill(0);
const COUNT: number[] = new Array<number>(MAX_LENGTH + 2).fill(0);
{
  for (let len = 1; len <= MAX_LENGTH; len++) {
    for (let sym = 0; sym <= EOS; sym++) if (LENGTHS[sym] === len) SORTED.push(sym);
  }
  let code = 0;
  let at = 0;
  for (let len = 1; len <= MAX_LENGTH; len++) {
    FIRST_CODE[len] = code;
    FIRST_INDEX[len] = at;
    while (at < SORTED.length && LENGTHS[SORTED[at]!] === len) {
      CODES[SORTED[at]!] = code++;
      COUNT[len]!++;
      at++;
    }
    code *= 2;
  }
}

export function huffmanCode(symbol: number): { code: number; length: number } {
  return { code: CODES[symbol]!, length: LENGTHS[symbol]! };
}

/** The Huffman-encoded length of `bytes`, in bytes (to choose between raw and Huffman). */
export function huffmanLength(bytes: Uint8Array): number {
  let bits = 0;
  for (const b of bytes) bits += LENGTHS[b]!;
  return Math.ceil(bits / 8);
}

export function huffmanEncode(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(huffmanLength(bytes));
  let acc = 0; // pending bits, at most 7 + 30: kept below 2^53 by flushing whole bytes
  let bits = 0;
  let at = 0;
  for (const b of bytes) {
    acc = acc * 2 ** LENGTHS[b]! + CODES[b]!;
    bits += LENGTHS[b]!;
    while (bits >= 8) {
      bits -= 8;
      const byte = Math.floor(acc / 2 ** bits);
      out[at++] = byte;
      acc -= byte * 2 ** bits;
    }
  }
  // Pad with the most significant bits of EOS (all ones).
  if (bits > 0) out[at] = acc * 2 ** (8 - bits) + (2 ** (8 - bits) - 1);
  return out;
}

/**
 * Decodes a Huffman string; throws FRAME_MALFORMED for an EOS inside the data, padding longer
 * than 7 bits, or padding that is not a prefix of EOS (RFC 7541 §5.2).
 */
export function huffmanDecode(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      const offset = code - FIRST_CODE[len]!;
      if (offset >= 0 && offset < COUNT[len]!) {
        const sym = SORTED[FIRST_INDEX[len]! + offset]!;
        if (sym === EOS) throw new H3CodecError('HUFFMAN', 'EOS inside a Huffman string');
        out.push(sym);
        code = 0;
        len = 0;
      } else if (len >= MAX_LENGTH) {
        throw new H3CodecError('HUFFMAN', 'invalid Huffman code');
      }
    }
  }
  if (len > 7 || code !== 2 ** len - 1) throw new H3CodecError('HUFFMAN', 'bad Huffman padding');
  return Uint8Array.from(out);
}
