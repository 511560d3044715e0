/**
 * HTTP/3 frames (RFC 9114 §7): `type varint | length varint | payload`, and the SETTINGS payload
 * (§7.2.4). An incremental decoder hands out whole frames with a bound on their size, because
 * a peer controls the length field.
 */
import { H3CodecError } from '../errors.ts';
import { LARGE_VARINT, MAX_VARINT, readVarint, readVarintBig, varintLength, writeVarint } from './varint.ts';

export const FrameType = {
  DATA: 0x00,
  HEADERS: 0x01,
  CANCEL_PUSH: 0x03,
  SETTINGS: 0x04,
  PUSH_PROMISE: 0x05,
  GOAWAY: 0x07,
  MAX_PUSH_ID: 0x0d,
} as const;

/** The SETTINGS Chromium's WebTransport needs from a server (docs/PLATFORM.md, draft-02 dialect). */
export const Setting = {
  QPACK_MAX_TABLE_CAPACITY: 0x01,
  MAX_FIELD_SECTION_SIZE: 0x06,
  QPACK_BLOCKED_STREAMS: 0x07,
  ENABLE_CONNECT_PROTOCOL: 0x08,
  H3_DATAGRAM: 0x33,
  H3_DATAGRAM_DRAFT04: 0xffd277,
  ENABLE_WEBTRANSPORT: 0x2b603742,
  WEBTRANSPORT_MAX_SESSIONS: 0xc671706a,
} as const;

export interface H3Frame {
  type: number;
  payload: Uint8Array;
}

export function encodeFrame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(varintLength(type) + varintLength(payload.length) + payload.length);
  let at = writeVarint(type, out, 0);
  at += writeVarint(payload.length, out, at);
  out.set(payload, at);
  return out;
}

/** Settings in order; a repeated identifier is an error (H3_SETTINGS_ERROR). */
export function encodeSettings(settings: ReadonlyArray<readonly [number, number]>): Uint8Array {
  const size = settings.reduce((n, [id, v]) => n + varintLength(id) + varintLength(v), 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const [id, value] of settings) {
    at += writeVarint(id, out, at);
    at += writeVarint(value, out, at);
  }
  return out;
}

/**
 * The settings by id. Ids and values are read exactly (62-bit), so greased ones (RFC 9114
 * §7.2.4.1) are told apart and ignored; only ids up to 2^53−1 are kept, values above it as
 * LARGE_VARINT (no known setting needs more).
 */
export function decodeSettings(payload: Uint8Array): Map<number, number> {
  const out = new Map<number, number>();
  const seen = new Set<bigint>();
  let at = 0;
  while (at < payload.length) {
    const id = readVarintBig(payload, at);
    const value = id && readVarintBig(payload, at + id.length);
    if (!id || !value) throw new H3CodecError('SETTINGS', 'truncated SETTINGS');
    if (seen.has(id.value)) throw new H3CodecError('SETTINGS', `setting 0x${id.value.toString(16)} repeated`);
    seen.add(id.value);
    if (id.value <= BigInt(MAX_VARINT)) out.set(Number(id.value), value.value <= BigInt(MAX_VARINT) ? Number(value.value) : LARGE_VARINT);
    at += id.length + value.length;
  }
  return out;
}

/** Incremental decoder for one HTTP/3 stream's frames; input may be split anywhere. */
export class H3FrameDecoder {
  private buf: Uint8Array = new Uint8Array(0);

  constructor(private readonly maxPayload: number) {}

  /** Appends bytes and returns every frame now complete. */
  push(chunk: Uint8Array): H3Frame[] {
    if (this.buf.length === 0) this.buf = chunk;
    else {
      const joined = new Uint8Array(this.buf.length + chunk.length);
      joined.set(this.buf);
      joined.set(chunk, this.buf.length);
      this.buf = joined;
    }
    const frames: H3Frame[] = [];
    let at = 0;
    for (;;) {
      const type = readVarint(this.buf, at);
      const length = type && readVarint(this.buf, at + type.length);
      if (!type || !length) break;
      if (length.value > this.maxPayload) throw new H3CodecError('FRAME', `HTTP/3 frame of ${length.value} bytes over the ${this.maxPayload} limit`);
      const start = at + type.length + length.length;
      if (start + length.value > this.buf.length) break;
      frames.push({ type: type.value, payload: this.buf.subarray(start, start + length.value) });
      at = start + length.value;
    }
    this.buf = this.buf.subarray(at);
    return frames;
  }

  /** Bytes of an unfinished frame held. */
  get pending(): number {
    return this.buf.length;
  }
}
