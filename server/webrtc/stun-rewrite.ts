/**
 * The two STUN edits the ICE shim (ice-shim.ts) makes, and nothing else: RFC 8489 messages are
 * parsed just far enough to change one attribute and sign the message again.
 *
 * Why: Chromium's TURN-over-TCP/TLS port sends its connectivity checks with an ICE role
 * tiebreaker of 0 (a legal value, RFC 8445 §16.1), and libjuice (inside node-datachannel) reads
 * a 0 as "attribute absent" and answers 400 to every check (libjuice issues #355/#356, open), so
 * no session over `turns:` ever connects. The shim gives such a check a tiebreaker of 1 before
 * libjuice sees it, and puts the true source address back into libjuice's answer.
 * Nothing is re-signed unless its MESSAGE-INTEGRITY verified first: the shim is no signing oracle.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';

const COOKIE = 0x2112a442;
const HEADER = 20;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const XOR_MAPPED_ADDRESS = 0x0020;
const MESSAGE_INTEGRITY = 0x0008;
const FINGERPRINT = 0x8028;
const ICE_CONTROLLED = 0x8029;
const ICE_CONTROLLING = 0x802a;
const FINGERPRINT_XOR = 0x5354554e;

interface Attribute {
  type: number;
  /** Offset of the attribute's type field in the message. */
  at: number;
  length: number;
}

/** The attributes of a well-formed STUN message, or null for anything else (DTLS, garbage, truncation). */
function attributes(m: Uint8Array): Attribute[] | null {
  if (m.length < HEADER || (m[0]! & 0xc0) !== 0) return null;
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
  if (v.getUint32(4) !== COOKIE || v.getUint16(2) + HEADER !== m.length || v.getUint16(2) % 4 !== 0) return null;
  const out: Attribute[] = [];
  for (let at = HEADER; at < m.length; ) {
    if (at + 4 > m.length) return null;
    const type = v.getUint16(at);
    const length = v.getUint16(at + 2);
    if (at + 4 + length > m.length) return null;
    out.push({ type, at, length });
    at += 4 + ((length + 3) & ~3);
  }
  return out;
}

/** The message's first `upTo` bytes with the header's length as if `trailer` more bytes (the attribute computed over them) ended it: what RFC 8489 §14.5–14.7 hash. */
function covered(m: Uint8Array, upTo: number, trailer: number): Buffer {
  const head = Buffer.from(m.subarray(0, upTo));
  head.writeUInt16BE(upTo + trailer - HEADER, 2);
  return head;
}

/** HMAC-SHA1 for a MESSAGE-INTEGRITY (24 bytes with its header) at `upTo`. */
const integrity = (m: Uint8Array, upTo: number, key: string): Buffer => createHmac('sha1', key).update(covered(m, upTo, 24)).digest();

/** The CRC-32 value for a FINGERPRINT (8 bytes with its header) at `upTo`. */
const fingerprint = (m: Uint8Array, upTo: number): number => (crc32(covered(m, upTo, 8)) ^ FINGERPRINT_XOR) >>> 0;

/**
 * A copy of `m` with `edit` applied to its attributes' values, signed again with `key` — or
 * null when `m` is not a STUN message of `messageType`, has no MESSAGE-INTEGRITY that verifies with
 * `key` before the edit, or `edit` changed nothing.
 */
function resign(m: Uint8Array, messageType: number, key: string, edit: (out: Buffer, attrs: Attribute[]) => boolean): Buffer | null {
  const attrs = attributes(m);
  if (!attrs || ((m[0]! << 8) | m[1]!) !== messageType) return null;
  const mi = attrs.find((a) => a.type === MESSAGE_INTEGRITY);
  if (!mi || mi.length !== 20) return null;
  const given = m.subarray(mi.at + 4, mi.at + 24);
  if (!timingSafeEqual(given, integrity(m, mi.at, key))) return null;
  // Attributes after MESSAGE-INTEGRITY other than FINGERPRINT are not covered by it (RFC 8489 §14.5): left alone.
  const out = Buffer.from(m);
  if (!edit(out, attrs.filter((a) => a.at < mi.at))) return null;
  integrity(out, mi.at, key).copy(out, mi.at + 4);
  const fp = attrs.find((a) => a.type === FINGERPRINT);
  if (fp && fp.length === 4) out.writeUInt32BE(fingerprint(out, fp.at), fp.at + 4);
  return out;
}

/** Whether `m` is a well-formed STUN Binding request (a connectivity check), verified or not. */
export function isBindingRequest(m: Uint8Array): boolean {
  return attributes(m) !== null && ((m[0]! << 8) | m[1]!) === BINDING_REQUEST;
}

/**
 * A Binding request whose ICE-CONTROLLING or ICE-CONTROLLED tiebreaker is 0, given a tiebreaker
 * of 1 and signed again with `localPassword` (the receiving agent's ice-pwd); null when `m` is
 * anything else (the shim drops such a check: the agent takes it directly).
 */
export function liftZeroTiebreaker(m: Uint8Array, localPassword: string): Buffer | null {
  return resign(m, BINDING_REQUEST, localPassword, (out, attrs) => {
    const role = attrs.find((a) => (a.type === ICE_CONTROLLING || a.type === ICE_CONTROLLED) && a.length === 8);
    if (!role || out.readBigUInt64BE(role.at + 4) !== 0n) return false;
    out.writeBigUInt64BE(1n, role.at + 4);
    return true;
  });
}

export interface Address {
  address: string;
  port: number;
}

/** The XOR-MAPPED-ADDRESS value for `to`, XORed with the cookie (and the transaction id for IPv6) as RFC 8489 §14.2 says. */
function writeXorAddress(out: Buffer, at: number, length: number, to: Address): boolean {
  const v4 = to.address.split('.').map(Number);
  const family = out[at + 5];
  if (family === 0x01 && length === 8 && v4.length === 4 && v4.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
    out.writeUInt16BE(to.port ^ (COOKIE >>> 16), at + 6);
    out.writeUInt32BE((((v4[0]! << 24) | (v4[1]! << 16) | (v4[2]! << 8) | v4[3]!) ^ COOKIE) >>> 0, at + 8);
    return true;
  }
  return false; // IPv6 peers are not shimmed (ice-shim.ts binds IPv4 only)
}

/**
 * A Binding success response with its XOR-MAPPED-ADDRESS set to `to` (where the request really
 * came from, not the shim's own socket), signed again with `localPassword`; null for anything else.
 */
export function rewriteMappedAddress(m: Uint8Array, localPassword: string, to: Address): Buffer | null {
  return resign(m, BINDING_SUCCESS, localPassword, (out, attrs) => {
    const mapped = attrs.find((a) => a.type === XOR_MAPPED_ADDRESS);
    return mapped ? writeXorAddress(out, mapped.at, mapped.length, to) : false;
  });
}
