/**
 * STUN messages for the ICE shim's tests, built and read independently of server/webrtc/
 * stun-rewrite.ts (checked against RFC 5769's samples in test/unit/server-stun-rewrite.test.ts).
 */
import { createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const COOKIE = 0x2112a442;

/** A STUN message of `type` with `attrs` (zero-padded), then MESSAGE-INTEGRITY keyed `key` and FINGERPRINT. */
export function signedStun(type: number, attrs: Array<[number, Buffer]>, key: string, txid: Buffer = Buffer.alloc(12, 7)): Buffer {
  const body = Buffer.concat(
    attrs.map(([t, v]) => {
      const a = Buffer.alloc(4 + v.length + ((4 - (v.length % 4)) % 4));
      a.writeUInt16BE(t, 0);
      a.writeUInt16BE(v.length, 2);
      v.copy(a, 4);
      return a;
    }),
  );
  const head = Buffer.alloc(20);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(body.length + 24, 2);
  head.writeUInt32BE(COOKIE, 4);
  txid.copy(head, 8);
  const mi = createHmac('sha1', key).update(Buffer.concat([head, body])).digest();
  const m = Buffer.concat([head, body, Buffer.from('00080014', 'hex'), mi]);
  m.writeUInt16BE(m.length - 20 + 8, 2);
  const fp = Buffer.from('8028000400000000', 'hex');
  fp.writeUInt32BE((crc32(m) ^ 0x5354554e) >>> 0, 4);
  return Buffer.concat([m, fp]);
}

/** The value of the first attribute of `type`. */
export function attrValue(m: Buffer, type: number): Buffer | undefined {
  for (let at = 20; at + 4 <= m.length; ) {
    const t = m.readUInt16BE(at);
    const l = m.readUInt16BE(at + 2);
    if (t === type) return m.subarray(at + 4, at + 4 + l);
    at += 4 + ((l + 3) & ~3);
  }
  return undefined;
}

/** Whether MESSAGE-INTEGRITY and a final FINGERPRINT both verify over the message's own bytes (its padding included). */
export function verifies(m: Buffer, key: string): boolean {
  let mi = -1;
  let fp = -1;
  for (let at = 20; at + 4 <= m.length; ) {
    const t = m.readUInt16BE(at);
    if (t === 0x0008) mi = at;
    if (t === 0x8028) fp = at;
    at += 4 + ((m.readUInt16BE(at + 2) + 3) & ~3);
  }
  if (mi < 0 || fp !== m.length - 8) return false;
  const upTo = (n: number, extra: number) => {
    const h = Buffer.from(m.subarray(0, n));
    h.writeUInt16BE(n + extra - 20, 2);
    return h;
  };
  const hmacOk = createHmac('sha1', key).update(upTo(mi, 24)).digest().equals(m.subarray(mi + 4, mi + 24));
  return hmacOk && ((crc32(upTo(fp, 8)) ^ 0x5354554e) >>> 0) === m.readUInt32BE(fp + 4);
}

/** An IPv4 XOR-MAPPED-ADDRESS value. */
export function xorMappedValue(address: string, port: number): Buffer {
  const v = Buffer.alloc(8);
  v[1] = 0x01;
  v.writeUInt16BE(port ^ (COOKIE >>> 16), 2);
  v.writeUInt32BE((address.split('.').reduce((a, b) => a * 256 + Number(b), 0) ^ COOKIE) >>> 0, 4);
  return v;
}

/** The IPv4 address in a message's XOR-MAPPED-ADDRESS. */
export function readXorMapped(m: Buffer): { address: string; port: number } {
  const v = attrValue(m, 0x0020)!;
  const n = (v.readUInt32BE(4) ^ COOKIE) >>> 0;
  return { address: [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'), port: v.readUInt16BE(2) ^ (COOKIE >>> 16) };
}

/** An 8-byte ICE tiebreaker. */
export function tiebreaker(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
}
