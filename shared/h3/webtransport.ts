/**
 * The WebTransport-over-HTTP/3 pieces a server needs (draft-ietf-webtrans-http3-02, the dialect
 * Chromium speaks; docs/PLATFORM.md): the SETTINGS it must send, stream preambles, the extended
 * CONNECT that opens a session, and the mapping between WebTransport stream error codes and the
 * HTTP/3 error space that RESET_STREAM carries on the wire.
 */
import { H3CodecError } from '../errors.ts';
import { encodeFrame, encodeSettings, FrameType, Setting } from './frame.ts';
import { encodeFieldSection, type Field } from './qpack.ts';
import { encodeVarint, readVarint } from './varint.ts';

/** Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2, WebTransport draft-02 §4.2). */
export const UniStreamType = {
  CONTROL: 0x00,
  PUSH: 0x01,
  QPACK_ENCODER: 0x02,
  QPACK_DECODER: 0x03,
  WEBTRANSPORT: 0x54,
} as const;

/** The signal value that opens a bidirectional WebTransport stream: `0x41 | session id | data…`. */
export const WT_BIDI_SIGNAL = 0x41;

/** HTTP/3 connection and stream error codes used here (RFC 9114 §8.1, RFC 9204 §6). */
export const H3Error = {
  NO_ERROR: 0x100,
  GENERAL_PROTOCOL_ERROR: 0x101,
  INTERNAL_ERROR: 0x102,
  STREAM_CREATION_ERROR: 0x103,
  CLOSED_CRITICAL_STREAM: 0x104,
  FRAME_UNEXPECTED: 0x105,
  FRAME_ERROR: 0x106,
  EXCESSIVE_LOAD: 0x107,
  ID_ERROR: 0x108,
  SETTINGS_ERROR: 0x109,
  MISSING_SETTINGS: 0x10a,
  REQUEST_REJECTED: 0x10b,
  REQUEST_CANCELLED: 0x10c,
  MESSAGE_ERROR: 0x10e,
  QPACK_DECOMPRESSION_FAILED: 0x200,
} as const;

/** The server's control stream: its type byte, then SETTINGS (a zero-capacity QPACK table). */
export function serverControlPreamble(maxSessions: number): Uint8Array {
  const settings = encodeSettings([
    [Setting.QPACK_MAX_TABLE_CAPACITY, 0],
    [Setting.QPACK_BLOCKED_STREAMS, 0],
    [Setting.ENABLE_CONNECT_PROTOCOL, 1],
    [Setting.H3_DATAGRAM, 1],
    [Setting.H3_DATAGRAM_DRAFT04, 1],
    [Setting.ENABLE_WEBTRANSPORT, 1],
    [Setting.WEBTRANSPORT_MAX_SESSIONS, maxSessions],
  ]);
  const frame = encodeFrame(FrameType.SETTINGS, settings);
  const out = new Uint8Array(1 + frame.length);
  out[0] = UniStreamType.CONTROL;
  out.set(frame, 1);
  return out;
}

/** GOAWAY (RFC 9114 §5.2): requests on stream ids at or above `streamId` will not be processed. */
export function goawayFrame(streamId: number): Uint8Array {
  return encodeFrame(FrameType.GOAWAY, encodeVarint(streamId));
}

/** A HEADERS frame for a response; `extra` fields follow `:status`. */
export function responseHeaders(status: number, extra: readonly Field[] = []): Uint8Array {
  return encodeFrame(FrameType.HEADERS, encodeFieldSection([[':status', String(status)], ...extra]));
}

/** The answer that opens a session in the draft-02 dialect. */
export const SESSION_ACCEPTED: readonly Field[] = [['sec-webtransport-http3-draft', 'draft02']];

/**
 * The leading varints of a stream, read incrementally: how many bytes they took and their values.
 * `count` varints are wanted (a bidirectional WebTransport stream has two: signal and session id).
 * Returns null while `buf` holds only a prefix.
 */
export function readPreamble(buf: Uint8Array, count: 1 | 2): { values: number[]; length: number } | null {
  const values: number[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const v = readVarint(buf, at);
    if (!v) return null;
    values.push(v.value);
    at += v.length;
    // A bidirectional stream that is not WebTransport carries HTTP/3 frames: one varint is enough.
    if (i === 0 && v.value !== WT_BIDI_SIGNAL) break;
  }
  return { values, length: at };
}

export type ConnectRequest =
  | { kind: 'webtransport'; authority: string; path: string; token: string | null }
  | { kind: 'other'; method: string };

/**
 * Classifies a request's header fields. An extended CONNECT for WebTransport (RFC 9220 rules:
 * :method CONNECT, :protocol webtransport, :scheme https, :authority and :path present) gives the
 * path without its query and the `token` query parameter; any other well-formed request is
 * "other" (answered 404). Malformed pseudo-headers throw (H3_MESSAGE_ERROR: a 400).
 */
export function classifyRequest(fields: readonly Field[]): ConnectRequest {
  const pseudo = new Map<string, string>();
  let regularSeen = false;
  for (const [name, value] of fields) {
    if (name.startsWith(':')) {
      if (regularSeen) throw new H3CodecError('MESSAGE', 'pseudo-header after a regular field');
      if (pseudo.has(name)) throw new H3CodecError('MESSAGE', `${name} repeated`);
      if (![':method', ':scheme', ':authority', ':path', ':protocol'].includes(name)) throw new H3CodecError('MESSAGE', `unknown pseudo-header ${name}`);
      pseudo.set(name, value);
    } else {
      regularSeen = true;
      if (name !== name.toLowerCase()) throw new H3CodecError('MESSAGE', 'upper-case field name');
    }
  }
  const method = pseudo.get(':method');
  if (!method) throw new H3CodecError('MESSAGE', 'no :method');
  if (method !== 'CONNECT' || !pseudo.has(':protocol')) {
    if (pseudo.has(':protocol')) throw new H3CodecError('MESSAGE', ':protocol on a non-CONNECT request');
    return { kind: 'other', method };
  }
  const authority = pseudo.get(':authority');
  const fullPath = pseudo.get(':path');
  if (pseudo.get(':protocol') !== 'webtransport') return { kind: 'other', method: `CONNECT ${pseudo.get(':protocol')}` };
  if (pseudo.get(':scheme') !== 'https' || !authority || !fullPath || !fullPath.startsWith('/')) {
    throw new H3CodecError('MESSAGE', 'extended CONNECT needs :scheme https, :authority and a :path');
  }
  const q = fullPath.indexOf('?');
  const path = q < 0 ? fullPath : fullPath.slice(0, q);
  return { kind: 'webtransport', authority, path, token: q < 0 ? null : queryParam(fullPath.slice(q + 1), 'token') };
}

function queryParam(query: string, name: string): string | null {
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (key !== name) continue;
    try {
      return decodeURIComponent((eq < 0 ? '' : part.slice(eq + 1)).replace(/\+/g, ' '));
    } catch {
      return null; // a broken %-escape is no token at all
    }
  }
  return null;
}

// WebTransport application error codes live in a reserved HTTP/3 range that skips every
// 0x1f-th value (the GREASE codepoints): draft-ietf-webtrans-http3 §4.3.
const WT_FIRST = 0x52e4a40fa8db;
const WT_LAST = 0x52e5ac983162;

/** The HTTP/3 error code a RESET_STREAM carries for WebTransport stream error `code` (0 … 2^32−1). */
export function webtransportToHttp3(code: number): number {
  if (!Number.isInteger(code) || code < 0 || code > 0xffffffff) throw new RangeError(`WebTransport error code out of range: ${code}`);
  return WT_FIRST + code + Math.floor(code / 0x1e);
}

/** The WebTransport stream error code inside an HTTP/3 error code, or null outside the range. */
export function http3ToWebtransport(h3: number): number | null {
  if (!Number.isInteger(h3) || h3 < WT_FIRST || h3 > WT_LAST || (h3 - 0x21) % 0x1f === 0) return null;
  const shifted = h3 - WT_FIRST;
  return shifted - Math.floor(shifted / 0x1f);
}
