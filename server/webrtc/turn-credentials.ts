/**
 * Short-lived TURN credentials in coturn's `use-auth-secret` scheme (the TURN REST API draft):
 * the username is the expiry time in Unix seconds, the password base64(HMAC-SHA1(secret,
 * username)). The edge and the TURN server share the secret; a client holds only credentials
 * that expire. The username carries no ":user" part: libdatachannel's TURN client splits at ":"
 * (docs/PLATFORM.md).
 */
import { createHmac } from 'node:crypto';

export interface TurnCredentials {
  username: string;
  credential: string;
  /** When they stop working, Unix milliseconds. */
  expiresAt: number;
}

export function mintTurnCredentials(secret: string, ttlSeconds: number, nowMs: number): TurnCredentials {
  const expiry = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = String(expiry);
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64'), expiresAt: expiry * 1000 };
}

/** What discovery says of TURN (PROTOCOL.md §4.1): the servers, with credentials minted now. */
export function turnDiscovery(turn: { urls: string[]; secret: string; ttlSeconds: number }, nowMs: number) {
  const c = mintTurnCredentials(turn.secret, turn.ttlSeconds, nowMs);
  return { iceServers: [{ urls: turn.urls, username: c.username, credential: c.credential }], expiresAt: c.expiresAt };
}
