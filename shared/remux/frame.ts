/**
 * ReMux frame layout (PROTOCOL.md §2, TunneLS): `stream id u16 | length u16 | payload`, big-endian.
 * Stream 0 carries control messages; a zero-length frame on a data stream is FIN.
 */
import { RemuxError, UsageError } from '../errors.ts';

export const HEADER_LENGTH = 4;
export const MAX_PAYLOAD = 0xffff;
export const CONTROL_STREAM = 0;
export const MAX_STREAM_ID = 0xffff;
/** Every stream starts with this much credit in each direction. */
export const INITIAL_WINDOW = 256 * 1024;
/** Windows are u32 on the wire; a grant that would overflow one is a protocol error. */
export const MAX_WINDOW = 0xffffffff;

export const ControlType = {
  WINDOW: 0x01,
  RESET: 0x02,
  PING: 0x03,
  PONG: 0x04,
  GOAWAY: 0x05,
  /** Any length, any content, ignored by the receiver: hides the size of the frames beside it. */
  PADDING: 0x06,
  /** The opener holds a stream's first bytes and asks for a COVER_REPLY of a size: a handshake's round trip (padding.ts). */
  COVER: 0x07,
  /** The answer to COVER: the stream, then filler up to the size asked (variable length). */
  COVER_REPLY: 0x08,
} as const;

/** The largest COVER_REPLY an acceptor sends, whatever was asked (a handshake flight's size). */
export const MAX_COVER_REPLY = 4096;

/** Payload length of each known control type, type byte included; any other length is malformed. */
export const CONTROL_LENGTH: Readonly<Record<number, number>> = {
  [ControlType.WINDOW]: 7,
  [ControlType.RESET]: 4,
  [ControlType.PING]: 9,
  [ControlType.PONG]: 9,
  [ControlType.GOAWAY]: 2,
  [ControlType.COVER]: 5,
};

export const ResetCode = {
  UNREACHABLE: 0x01,
  POLICY: 0x02,
  TIMEOUT: 0x03,
  PROTOCOL: 0x04,
  CANCELLED: 0x05,
  RESOURCES: 0x06,
  CONNECTION_RESET: 0x07,
  /** The destination's name did not resolve at the edge (told apart from 0x01 so that the user learns which). */
  NAME_NOT_RESOLVED: 0x08,
} as const;
export type ResetCode = (typeof ResetCode)[keyof typeof ResetCode];

/** `code` as a RESET code (§2) when it is one (a WebTransport stream error may carry any number), else `fallback`. */
export function asResetCode(code: unknown, fallback: ResetCode): number {
  return typeof code === 'number' && code >= ResetCode.UNREACHABLE && code <= ResetCode.NAME_NOT_RESOLVED ? code : fallback;
}

export const GoawayCode = {
  NORMAL: 0x00,
  PROTOCOL: 0x04,
  RESOURCES: 0x06,
} as const;

export type ControlMessage =
  | { type: typeof ControlType.WINDOW; stream: number; delta: number }
  | { type: typeof ControlType.RESET; stream: number; code: number }
  | { type: typeof ControlType.PING; nonce: bigint }
  | { type: typeof ControlType.PONG; nonce: bigint }
  | { type: typeof ControlType.GOAWAY; code: number }
  | { type: typeof ControlType.COVER; stream: number; size: number }
  | { type: typeof ControlType.COVER_REPLY; stream: number }
  | { type: 'unknown'; code: number };

export function encodeHeader(stream: number, length: number, out = new Uint8Array(HEADER_LENGTH), at = 0): Uint8Array {
  if (!Number.isInteger(stream) || stream < 0 || stream > MAX_STREAM_ID) {
    throw new UsageError(`stream id out of range: ${stream}`);
  }
  if (!Number.isInteger(length) || length < 0 || length > MAX_PAYLOAD) {
    throw new UsageError(`payload length out of range: ${length}`);
  }
  out[at] = stream >> 8;
  out[at + 1] = stream & 0xff;
  out[at + 2] = length >> 8;
  out[at + 3] = length & 0xff;
  return out;
}

/** One whole frame in one buffer (a copy); the mux itself sends header and payload as two views. */
export function encodeFrame(stream: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH + payload.length);
  encodeHeader(stream, payload.length, out, 0);
  out.set(payload, HEADER_LENGTH);
  return out;
}

/** A PADDING control frame of `total` bytes on the wire (header included; at least 5). */
export function encodePadding(total: number): Uint8Array {
  const payload = Math.min(Math.max(total - HEADER_LENGTH, 1), MAX_PAYLOAD);
  const out = new Uint8Array(HEADER_LENGTH + payload);
  encodeHeader(CONTROL_STREAM, payload, out, 0);
  out[HEADER_LENGTH] = ControlType.PADDING;
  // The content is zeros: inside the outer TLS it is as opaque as random bytes, and costs nothing to make.
  return out;
}

/** Header, type and stream id: the smallest COVER_REPLY. */
const MIN_COVER_REPLY = HEADER_LENGTH + 3;

/** A COVER_REPLY for `stream`, `total` bytes on the wire (header included), at most MAX_COVER_REPLY. */
export function encodeCoverReply(stream: number, total: number): Uint8Array {
  const payload = Math.min(Math.max(total, MIN_COVER_REPLY), MAX_COVER_REPLY) - HEADER_LENGTH;
  const out = new Uint8Array(HEADER_LENGTH + payload);
  encodeHeader(CONTROL_STREAM, payload, out, 0);
  out[HEADER_LENGTH] = ControlType.COVER_REPLY;
  out[HEADER_LENGTH + 1] = stream >> 8;
  out[HEADER_LENGTH + 2] = stream & 0xff;
  return out;
}

export function encodeControl(msg: Exclude<ControlMessage, { type: 'unknown' } | { type: typeof ControlType.COVER_REPLY }>): Uint8Array {
  const length = CONTROL_LENGTH[msg.type]!;
  const out = new Uint8Array(HEADER_LENGTH + length);
  encodeHeader(CONTROL_STREAM, length, out, 0);
  const view = new DataView(out.buffer, HEADER_LENGTH);
  view.setUint8(0, msg.type);
  switch (msg.type) {
    case ControlType.WINDOW:
      view.setUint16(1, msg.stream);
      view.setUint32(3, msg.delta);
      break;
    case ControlType.RESET:
      view.setUint16(1, msg.stream);
      view.setUint8(3, msg.code);
      break;
    case ControlType.PING:
    case ControlType.PONG:
      view.setBigUint64(1, msg.nonce);
      break;
    case ControlType.GOAWAY:
      view.setUint8(1, msg.code);
      break;
    case ControlType.COVER:
      view.setUint16(1, msg.stream);
      view.setUint16(3, msg.size);
      break;
  }
  return out;
}

/** Parses a whole control payload; a known type with the wrong length is FRAME_MALFORMED. */
export function decodeControl(payload: Uint8Array): ControlMessage {
  if (payload.length === 0) throw new RemuxError('FRAME_MALFORMED', 'empty control frame');
  const type = payload[0]!;
  if (type === ControlType.COVER_REPLY) {
    if (payload.length < 3) throw new RemuxError('FRAME_MALFORMED', `control type 0x08 needs at least 3 bytes, got ${payload.length}`);
    return { type, stream: (payload[1]! << 8) | payload[2]! };
  }
  const expected = CONTROL_LENGTH[type];
  if (expected === undefined) return { type: 'unknown', code: type };
  if (payload.length !== expected) {
    throw new RemuxError('FRAME_MALFORMED', `control type 0x${type.toString(16)} needs ${expected} bytes, got ${payload.length}`);
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  switch (type) {
    case ControlType.WINDOW:
      return { type, stream: view.getUint16(1), delta: view.getUint32(3) };
    case ControlType.RESET:
      return { type, stream: view.getUint16(1), code: view.getUint8(3) };
    case ControlType.PING:
      return { type, nonce: view.getBigUint64(1) };
    case ControlType.PONG:
      return { type, nonce: view.getBigUint64(1) };
    case ControlType.COVER:
      return { type, stream: view.getUint16(1), size: view.getUint16(3) };
    default:
      return { type: ControlType.GOAWAY, code: view.getUint8(1) };
  }
}
