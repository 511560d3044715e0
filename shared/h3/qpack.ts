/**
 * QPACK field sections (RFC 9204) for a server that advertises a dynamic table capacity of 0:
 * static-table references, literals (raw or Huffman), nothing dynamic — a peer that references
 * the dynamic table anyway is a decompression failure. That is all a WebTransport CONNECT and
 * its answer need, and it leaves no encoder or decoder stream state to get wrong.
 */
import { H3CodecError } from '../errors.ts';
import { huffmanDecode, huffmanEncode, huffmanLength } from './huffman.ts';

/** RFC 9204 Appendix A, index by index. */
// prettier-ignore
export const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':path', '/'], ['age', '0'], ['content-disposition', ''], ['content-length', '0'],
  ['cookie', ''], ['date', ''], ['etag', ''], ['if-modified-since', ''], ['if-none-match', ''],
  ['last-modified', ''], ['link', ''], ['location', ''], ['referer', ''], ['set-cookie', ''],
  [':method', 'CONNECT'], [':method', 'DELETE'], [':method', 'GET'], [':method', 'HEAD'], [':method', 'OPTIONS'],
  [':method', 'POST'], [':method', 'PUT'], [':scheme', 'http'], [':scheme', 'https'], [':status', '103'],
  [':status', '200'], [':status', '304'], [':status', '404'], [':status', '503'], ['accept', '*/*'],
  ['accept', 'application/dns-message'], ['accept-encoding', 'gzip, deflate, br'], ['accept-ranges', 'bytes'],
  ['access-control-allow-headers', 'cache-control'], ['access-control-allow-headers', 'content-type'],
  ['access-control-allow-origin', '*'], ['cache-control', 'max-age=0'], ['cache-control', 'max-age=2592000'],
  ['cache-control', 'max-age=604800'], ['cache-control', 'no-cache'], ['cache-control', 'no-store'],
  ['cache-control', 'public, max-age=31536000'], ['content-encoding', 'br'], ['content-encoding', 'gzip'],
  ['content-type', 'application/dns-message'], ['content-type', 'application/javascript'],
  ['content-type', 'application/json'], ['content-type', 'application/x-www-form-urlencoded'],
  ['content-type', 'image/gif'], ['content-type', 'image/jpeg'], ['content-type', 'image/png'],
  ['content-type', 'text/css'], ['content-type', 'text/html; charset=utf-8'], ['content-type', 'text/plain'],
  ['content-type', 'text/plain;charset=utf-8'], ['range', 'bytes=0-'], ['strict-transport-security', 'max-age=31536000'],
  ['strict-transport-security', 'max-age=31536000; includesubdomains'],
  ['strict-transport-security', 'max-age=31536000; includesubdomains; preload'], ['vary', 'accept-encoding'],
  ['vary', 'origin'], ['x-content-type-options', 'nosniff'], ['x-xss-protection', '1; mode=block'],
  [':status', '100'], [':status', '204'], [':status', '206'], [':status', '302'], [':status', '400'],
  [':status', '403'], [':status', '421'], [':status', '425'], [':status', '500'], ['accept-language', ''],
  ['access-control-allow-credentials', 'FALSE'], ['access-control-allow-credentials', 'TRUE'],
  ['access-control-allow-headers', '*'], ['access-control-allow-methods', 'get'],
  ['access-control-allow-methods', 'get, post, options'], ['access-control-allow-methods', 'options'],
  ['access-control-expose-headers', 'content-length'], ['access-control-request-headers', 'content-type'],
  ['access-control-request-method', 'get'], ['access-control-request-method', 'post'], ['alt-svc', 'clear'],
  ['authorization', ''], ['content-security-policy', "script-src 'none'; object-src 'none'; base-uri 'none'"],
  ['early-data', '1'], ['expect-ct', ''], ['forwarded', ''], ['if-range', ''], ['origin', ''],
  ['purpose', 'prefetch'], ['server', ''], ['timing-allow-origin', '*'], ['upgrade-insecure-requests', '1'],
  ['user-agent', ''], ['x-forwarded-for', ''], ['x-frame-options', 'deny'], ['x-frame-options', 'sameorigin'],
];

export type Field = readonly [name: string, value: string];

function fail(message: string): H3CodecError {
  return new H3CodecError('QPACK', `QPACK: ${message}`);
}

/** An N-bit prefix integer (RFC 7541 §5.1) at `at`, whose first byte's low `bits` bits start it. */
export function readPrefixInt(buf: Uint8Array, at: number, bits: number): { value: number; next: number } {
  if (at >= buf.length) throw fail('truncated integer');
  const max = 2 ** bits - 1;
  let value = buf[at]! & max;
  let next = at + 1;
  if (value < max) return { value, next };
  for (let shift = 0; ; shift += 7) {
    if (next >= buf.length) throw fail('truncated integer');
    if (shift > 49) throw fail('integer too large');
    const b = buf[next++]!;
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return { value, next };
  }
}

/** Appends an N-bit prefix integer; `first` holds the bits above the prefix. */
export function writePrefixInt(out: number[], first: number, bits: number, value: number): void {
  const max = 2 ** bits - 1;
  if (value < max) {
    out.push(first | value);
    return;
  }
  out.push(first | max);
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
}

const latin1 = (b: Uint8Array) => String.fromCharCode(...b);
const fromLatin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

/** A string literal whose H flag sits just above a `bits`-bit length prefix. */
function readString(buf: Uint8Array, at: number, bits: number, limit: number): { value: string; next: number } {
  if (at >= buf.length) throw fail('truncated string');
  const huffman = (buf[at]! >> bits) & 1;
  const { value: length, next } = readPrefixInt(buf, at, bits);
  if (length > limit) throw fail('string over the field section limit');
  if (next + length > buf.length) throw fail('truncated string');
  const raw = buf.subarray(next, next + length);
  return { value: latin1(huffman ? huffmanDecode(raw) : raw), next: next + length };
}

function writeString(out: number[], first: number, bits: number, value: string): void {
  const raw = fromLatin1(value);
  if (huffmanLength(raw) < raw.length) {
    const coded = huffmanEncode(raw);
    writePrefixInt(out, first | (1 << bits), bits, coded.length);
    for (const b of coded) out.push(b);
  } else {
    writePrefixInt(out, first, bits, raw.length);
    for (const b of raw) out.push(b);
  }
}

function staticEntry(index: number): readonly [string, string] {
  const entry = STATIC_TABLE[index];
  if (!entry) throw fail(`static index ${index} out of range`);
  return entry;
}

/** Decodes one encoded field section; `maxSize` bounds the decoded names and values (bytes). */
export function decodeFieldSection(buf: Uint8Array, maxSize = 16 * 1024): Field[] {
  const ric = readPrefixInt(buf, 0, 8);
  if (ric.value !== 0) throw fail('dynamic table reference (capacity is 0)');
  let at = readPrefixInt(buf, ric.next, 7).next; // Delta Base: meaningless without a dynamic table
  const fields: Field[] = [];
  let size = 0;
  while (at < buf.length) {
    const b = buf[at]!;
    let field: Field;
    if (b & 0x80) {
      if (!(b & 0x40)) throw fail('dynamic table reference (capacity is 0)');
      const idx = readPrefixInt(buf, at, 6);
      field = staticEntry(idx.value);
      at = idx.next;
    } else if (b & 0x40) {
      if (!(b & 0x10)) throw fail('dynamic table reference (capacity is 0)');
      const idx = readPrefixInt(buf, at, 4);
      const value = readString(buf, idx.next, 7, maxSize);
      field = [staticEntry(idx.value)[0], value.value];
      at = value.next;
    } else if (b & 0x20) {
      const name = readString(buf, at, 3, maxSize);
      const value = readString(buf, name.next, 7, maxSize);
      field = [name.value, value.value];
      at = value.next;
    } else throw fail('dynamic table reference (capacity is 0)');
    size += field[0].length + field[1].length + 32; // RFC 9204 §3.2.1 entry size, as a bound
    if (size > maxSize) throw fail('field section over its size limit');
    fields.push(field);
  }
  return fields;
}

/** Encodes a field section with static references and literals only (never the dynamic table). */
export function encodeFieldSection(fields: readonly Field[]): Uint8Array {
  const out: number[] = [0x00, 0x00]; // Required Insert Count 0, Delta Base 0
  for (const [name, value] of fields) {
    const exact = STATIC_TABLE.findIndex(([n, v]) => n === name && v === value);
    if (exact >= 0) {
      writePrefixInt(out, 0xc0, 6, exact);
      continue;
    }
    const named = STATIC_TABLE.findIndex(([n]) => n === name);
    if (named >= 0) {
      writePrefixInt(out, 0x50, 4, named);
      writeString(out, 0x00, 7, value);
    } else {
      writeString(out, 0x20, 3, name);
      writeString(out, 0x00, 7, value);
    }
  }
  return Uint8Array.from(out);
}
