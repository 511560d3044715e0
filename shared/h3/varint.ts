/**
 * QUIC variable-length integers (RFC 9000 §16), the unit of every HTTP/3 and WebTransport field.
 * The two high bits of the first byte give the length (1, 2, 4 or 8 bytes) and values reach
 * 2^62−1. `readVarintBig` reads every one exactly; `readVarint` gives a number, exact up to
 * 2^53−1 and LARGE_VARINT above: every use of it compares with small known codes or limits,
 * which a larger value is past anyway (a greased setting or frame type, as Firefox sends, is
 * simply unknown). SETTINGS, whose greased ids and values must be told apart, read bigints.
 */
import { UsageError } from '../errors.ts';

/** The largest value `writeVarint` takes (numbers stay exact up to here). */
export const MAX_VARINT = Number.MAX_SAFE_INTEGER;
/** What `readVarint` gives for any value above MAX_VARINT. */
export const LARGE_VARINT = 2 ** 53;
/** The largest value the wire carries. */
export const MAX_VARINT_BIG = 2n ** 62n - 1n;

export function varintLength(value: number): 1 | 2 | 4 | 8 {
  if (!Number.isInteger(value) || value < 0 || value > MAX_VARINT) throw new UsageError(`varint out of range: ${value}`);
  return value < 0x40 ? 1 : value < 0x4000 ? 2 : value < 0x40000000 ? 4 : 8;
}

/** Writes `value` at `at` in `out` (which must have room); returns the bytes written. */
export function writeVarint(value: number, out: Uint8Array, at: number): number {
  const n = varintLength(value);
  if (n === 8) {
    const high = Math.floor(value / 2 ** 32);
    const low = value >>> 0;
    out[at] = 0xc0 | (high >>> 24);
    out[at + 1] = (high >>> 16) & 0xff;
    out[at + 2] = (high >>> 8) & 0xff;
    out[at + 3] = high & 0xff;
    out[at + 4] = low >>> 24;
    out[at + 5] = (low >>> 16) & 0xff;
    out[at + 6] = (low >>> 8) & 0xff;
    out[at + 7] = low & 0xff;
    return 8;
  }
  let v = value;
  for (let i = n - 1; i >= 0; i--) {
    out[at + i] = v & 0xff;
    v = Math.floor(v / 256);
  }
  out[at] = out[at]! | (n === 1 ? 0x00 : n === 2 ? 0x40 : 0x80);
  return n;
}

export function encodeVarint(value: number): Uint8Array {
  const out = new Uint8Array(varintLength(value));
  writeVarint(value, out, 0);
  return out;
}

/** Reads a varint at `at` exactly: its value and length, or null while `buf` holds only a prefix. Non-minimal encodings are allowed (RFC 9000 §16). */
export function readVarintBig(buf: Uint8Array, at: number): { value: bigint; length: number } | null {
  if (at >= buf.length) return null;
  const first = buf[at]!;
  const length = 1 << (first >> 6);
  if (at + length > buf.length) return null;
  let value = BigInt(first & 0x3f);
  for (let i = 1; i < length; i++) value = (value << 8n) | BigInt(buf[at + i]!);
  return { value, length };
}

/** Reads a varint at `at` as a number: exact up to 2^53−1, LARGE_VARINT above; null while incomplete. */
export function readVarint(buf: Uint8Array, at: number): { value: number; length: number } | null {
  if (at >= buf.length) return null;
  const first = buf[at]!;
  const length = 1 << (first >> 6);
  if (at + length > buf.length) return null;
  let value = first & 0x3f;
  for (let i = 1; i < length; i++) value = value * 256 + buf[at + i]!;
  return { value: value > MAX_VARINT ? LARGE_VARINT : value, length };
}
