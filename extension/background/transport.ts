/**
 * What the tunnel needs of a transport to the edge, so its choice and fallback rules are tested
 * with stand-ins and run with the real ones (meek over fetch, WebTransport).
 */
import type { Destination } from '../../shared/eagersocks.ts';
import type { PipeEnd } from '../../shared/remux/pipe.ts';

/** What a transport reports to the tunnel and, through it, to the popup. */
export interface TransportState {
  name: 'meek' | 'webtransport' | 'turn';
  reachable: boolean | null;
  rttMs: number | null;
  error: string | null;
  sessions: number;
  /** How it carries bytes now, in words for the popup (meek: streaming or polling, and why); null: nothing to say. */
  detail: string | null;
  /** What the popup should say is wrong: the edge cannot be reached, or it did not take the auth token. */
  problem: 'unreachable' | 'token' | null;
}

export interface Transport {
  readonly state: TransportState;
  /** A pipe end toward `destination`; throws when the transport cannot take one now. */
  open(destination: Destination): PipeEnd;
  close(): void;
}

/**
 * The session transports' keep-alive (PROTOCOL.md §4, §4.1): a probe a second, and a session that
 * has answered none for 3 s is dead — their own stacks (QUIC's idle timeout, ICE's consent checks)
 * would take tens of seconds while new connections hang on it.
 */
export const KEEPALIVE_EVERY_MS = 1000;
export const DEAD_AFTER_MS = 3000;

/** A transport whose session must first be established (WebTransport, WebRTC through TURN). */
export interface SessionTransport extends Transport {
  /** Settles with the handshake: resolves once up, rejects with why not. */
  readonly ready: Promise<void>;
  /** Resolves when an established session ends, with the reason. */
  readonly closed: Promise<string>;
}
