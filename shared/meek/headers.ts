/**
 * meek-v1 header names, limits and their parsers (PROTOCOL.md §1). The edge and the clients use
 * these same functions, so both ends agree on what is malformed.
 */
import { MeekError } from '../errors.ts';

export const HEADER_SESSION_ID = 'x-session-id';
export const HEADER_SEQ = 'x-meek-seq';
export const HEADER_MAX_BODY = 'x-meek-max-body';
export const HEADER_AUTH = 'x-meek-auth';

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
export const MAX_SEQ = Number.MAX_SAFE_INTEGER; // 2^53 − 1

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

export interface MeekRequestHeaders {
  sessionId: string;
  seq: number | null;
  clientMaxBody: number | null;
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
  };
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
