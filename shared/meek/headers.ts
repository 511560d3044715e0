/**
 * meek-v1 header names, limits and their parsers (PROTOCOL.md §1). The edge and the clients use
 * these same functions, so both ends agree on what is malformed.
 */
import { MeekError } from '../errors.ts';

export const HEADER_SESSION_ID = 'x-session-id';
export const HEADER_SEQ = 'x-meek-seq';
export const HEADER_MAX_BODY = 'x-meek-max-body';
export const HEADER_AUTH = 'x-meek-auth';
/** meek v2 (PROTOCOL.md §1.1): asked for by the client, confirmed by the edge on every answer. */
export const HEADER_VERSION = 'x-meek-version';
export const HEADER_ACK = 'x-meek-ack';
export const HEADER_DOWN = 'x-meek-down';
export const HEADER_HOLD = 'x-meek-hold';
export const HEADER_OFFSET = 'x-meek-offset';
export const HEADER_LEAD = 'x-meek-lead';
export const HEADER_WINDOW = 'x-meek-window';
export const HEADER_RETAIN = 'x-meek-retain';
export const HEADER_STREAM_MAX = 'x-meek-stream-max';
export const HEADER_PADDING = 'x-meek-padding';
export const HEADER_LANE = 'x-meek-lane';
export const HEADER_REWIND = 'x-meek-rewind';

/** The server's own max body unless configured (Lantern's). */
export const DEFAULT_SERVER_MAX_BODY = 262144;
/** What a client is assumed to accept when it does not say (Tor's meek-client drops bytes past it). */
export const DEFAULT_CLIENT_MAX_BODY = 65536;
/** A client uploads at most this much per request until it has seen the server's max. */
export const INITIAL_UPLOAD_LIMIT = 65536;
export const MIN_MAX_BODY = 1024;
/** Larger bodies buy nothing over loopback or a CDN and cost memory per session. */
export const MAX_MAX_BODY = 16 * 1024 * 1024;
/** A request that carried less than this is held up to the hold-off; a larger upload is answered at once. */
export const SMALL_UPLOAD_BYTES = 8 * 1024;
export const MIN_SEQ = 1;
/** Uploads a v2 session may have in flight: a seq up to this far past the last processed one waits its turn. */
export const PIPELINE_WINDOW = 8;
/** The longest a v2 poll may ask to be held (Tor's longest poll interval). */
export const MAX_HOLD_MS = 5000;
/** Random padding on v2 messages, in header characters (Xray XHTTP's xPaddingBytes default). */
export const PADDING_MIN = 100;
export const PADDING_MAX = 1000;
export const MAX_SEQ = Number.MAX_SAFE_INTEGER; // 2^53 − 1
/** Streams that may carry one session's downstream at once (each HTTP/2 stream has its own receive window). */
export const MAX_LANES = 4;

/** Whether `seq` is a value X-Meek-Seq may carry (an integer 1 … 2^53−1). */
export function isValidSeq(seq: number): boolean {
  return Number.isSafeInteger(seq) && seq >= MIN_SEQ;
}

const SESSION_ID = /^[A-Za-z0-9+/=_-]{8,128}$/;
const DECIMAL = /^[1-9][0-9]{0,15}$/;

function bad(message: string): MeekError {
  return new MeekError('HEADER', message);
}

export function parseSessionId(value: string | undefined): string {
  if (value === undefined || !SESSION_ID.test(value)) throw bad('X-Session-Id missing or invalid');
  return value;
}

/** 1 … 2^53−1 in plain decimal; anything else (0, signs, spaces, exponents) is malformed. */
export function parseSeq(value: string): number {
  if (!DECIMAL.test(value)) throw bad('X-Meek-Seq is not a decimal from 1');
  const n = Number(value);
  if (n > MAX_SEQ) throw bad('X-Meek-Seq out of range');
  return n;
}

/**
 * An integer ≥ 1024 in plain decimal. Values beyond what anyone should buffer are capped to
 * MAX_MAX_BODY, not refused: a client saying "anything" is not malformed (Number() of a very
 * long digit string is at worst Infinity, which the cap absorbs).
 */
export function parseMaxBody(value: string): number {
  if (!/^[0-9]+$/.test(value)) throw bad('X-Meek-Max-Body is not a decimal integer');
  const n = Number(value);
  if (n < MIN_MAX_BODY) throw bad(`X-Meek-Max-Body below ${MIN_MAX_BODY}`);
  return Math.min(n, MAX_MAX_BODY);
}

/** An offset in a session's downstream byte stream: 0 … 2^53−1 in plain decimal. */
export function parseOffset(value: string, name = 'X-Meek-Ack'): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(value)) throw bad(`${name} is not a decimal from 0`);
  const n = Number(value);
  if (n > MAX_SEQ) throw bad(`${name} out of range`);
  return n;
}

export type DownKind = 'poll' | 'stream';

export interface MeekV2RequestHeaders {
  /** Downstream bytes the client holds in order (what the edge may forget). */
  ack: number;
  down: DownKind | null;
  /** How long a poll may be held, 0 … MAX_HOLD_MS; null: the edge's hold-off. */
  holdMs: number | null;
  /** A stream that is one of several lanes (0 … MAX_LANES − 1): its body is segments; null: a plain stream. */
  lane: number | null;
  /** With a lane: the edge sends again from the acknowledged offset (a lane was cut). */
  rewind: boolean;
}

export interface MeekRequestHeaders {
  sessionId: string;
  seq: number | null;
  clientMaxBody: number | null;
  /** Present when the request says X-Meek-Version: 2. */
  v2: MeekV2RequestHeaders | null;
}

function parseV2(get: (lowercaseName: string) => string | undefined): MeekV2RequestHeaders | null {
  const version = get(HEADER_VERSION);
  if (version === undefined) {
    for (const h of [HEADER_ACK, HEADER_DOWN, HEADER_HOLD, HEADER_LANE, HEADER_REWIND]) if (get(h) !== undefined) throw bad(`${h} needs X-Meek-Version: 2`);
    return null;
  }
  if (version !== '2') throw bad('X-Meek-Version must be 2');
  const ackText = get(HEADER_ACK);
  const down = get(HEADER_DOWN);
  if (down !== undefined && down !== 'poll' && down !== 'stream') throw bad('X-Meek-Down must be poll or stream');
  const holdText = get(HEADER_HOLD);
  let holdMs: number | null = null;
  if (holdText !== undefined) {
    if (down !== 'poll') throw bad('X-Meek-Hold is for X-Meek-Down: poll');
    if (!/^[0-9]{1,5}$/.test(holdText) || Number(holdText) > MAX_HOLD_MS) throw bad(`X-Meek-Hold is not 0 … ${MAX_HOLD_MS}`);
    holdMs = Number(holdText);
  }
  const laneText = get(HEADER_LANE);
  let lane: number | null = null;
  if (laneText !== undefined) {
    if (down !== 'stream') throw bad('X-Meek-Lane is for X-Meek-Down: stream');
    if (!/^[0-9]$/.test(laneText) || Number(laneText) >= MAX_LANES) throw bad(`X-Meek-Lane is not 0 … ${MAX_LANES - 1}`);
    lane = Number(laneText);
  }
  const rewindText = get(HEADER_REWIND);
  if (rewindText !== undefined && (rewindText !== '1' || lane === null)) throw bad('X-Meek-Rewind is 1, and only with X-Meek-Lane');
  return { ack: ackText === undefined ? 0 : parseOffset(ackText), down: (down as DownKind | undefined) ?? null, holdMs, lane, rewind: rewindText !== undefined };
}

/** Reads the request headers the edge checks (after auth); throws MEEK_HEADER (400). */
export function parseMeekRequestHeaders(get: (lowercaseName: string) => string | undefined): MeekRequestHeaders {
  const sessionId = parseSessionId(get(HEADER_SESSION_ID));
  const seqText = get(HEADER_SEQ);
  const maxText = get(HEADER_MAX_BODY);
  return {
    sessionId,
    seq: seqText === undefined ? null : parseSeq(seqText),
    clientMaxBody: maxText === undefined ? null : parseMaxBody(maxText),
    v2: parseV2(get),
  };
}

const PAD_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Random header-safe padding of PADDING_MIN … PADDING_MAX characters. Random characters, not one
 * repeated: HTTP/2's HPACK would index or Huffman-squeeze a constant value to a few bytes.
 */
export function paddingValue(random: () => number = Math.random): string {
  const unit = () => Math.min(Math.max(random(), 0), 0.999999);
  const n = PADDING_MIN + Math.floor(unit() * (PADDING_MAX - PADDING_MIN + 1));
  let out = '';
  for (let i = 0; i < n; i++) out += PAD_ALPHABET[Math.floor(unit() * 64)];
  return out;
}

/** A fresh session id: 16 random bytes, base64url (22 characters). */
export function newSessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += alphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += alphabet[(acc << (6 - bits)) & 63];
  return out;
}
