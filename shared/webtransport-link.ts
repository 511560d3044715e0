/**
 * The local link between the WebTransport front (the Deno child that speaks QUIC) and the edge
 * (Node), one Unix-socket connection per WebTransport session. The front asks before it opens a
 * session, so auth, path and session limits have one implementation (the edge's); after an
 * accepting answer the connection carries ReMux (§2), one stream per WebTransport stream.
 *
 *   front → edge: u16 length | JSON {"path", "token", "authority"}
 *   edge → front: u16 HTTP status (200 opens the session; 403, 404, 503 refuse it)
 */
import { LinkError, UsageError } from './errors.ts';

export interface SessionRequest {
  path: string;
  token: string | null;
  authority: string;
}

/** A hello longer than this is hostile: a path and a token fit easily. */
export const MAX_HELLO = 4096;

export function encodeSessionRequest(req: SessionRequest): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(req));
  if (json.length > MAX_HELLO) throw new UsageError('session request too long');
  const out = new Uint8Array(2 + json.length);
  out[0] = json.length >> 8;
  out[1] = json.length & 0xff;
  out.set(json, 2);
  return out;
}

/** The request and the bytes after it, or null while `buf` holds only a prefix. */
export function decodeSessionRequest(buf: Uint8Array): { request: SessionRequest; rest: Uint8Array } | null {
  if (buf.length < 2) return null;
  const length = (buf[0]! << 8) | buf[1]!;
  if (length > MAX_HELLO) throw new LinkError('LINK_MALFORMED', `session request of ${length} bytes`);
  if (buf.length < 2 + length) return null;
  let data: unknown;
  try {
    data = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(2, 2 + length)));
  } catch {
    throw new LinkError('LINK_MALFORMED', 'session request is not JSON');
  }
  const d = data as Record<string, unknown> | null;
  if (typeof d !== 'object' || d === null || typeof d.path !== 'string' || typeof d.authority !== 'string' || (d.token !== null && typeof d.token !== 'string')) {
    throw new LinkError('LINK_MALFORMED', 'session request fields missing or mistyped');
  }
  return { request: { path: d.path, token: d.token as string | null, authority: d.authority }, rest: buf.subarray(2 + length) };
}

export function encodeSessionAnswer(status: number): Uint8Array {
  return new Uint8Array([status >> 8, status & 0xff]);
}

/** The status and the bytes after it, or null while incomplete. */
export function decodeSessionAnswer(buf: Uint8Array): { status: number; rest: Uint8Array } | null {
  if (buf.length < 2) return null;
  const status = (buf[0]! << 8) | buf[1]!;
  if (status < 200 || status > 599) throw new LinkError('LINK_MALFORMED', `bad session answer ${status}`);
  return { status, rest: buf.subarray(2) };
}
